"""Results read off the snapshot, kept per process while nothing they read has changed.

A comparison's table and chart, or a shipment's quote, take tens of milliseconds to work
out and render at a million items, and shippers ask for the same few again and again:
the common fee types at the busy ports. Such a result reads the versions in force of a
few fee types, the firms publishing them and the catalog; the day, the exchange rates
and the request's arguments go into its key. The snapshot's lineage records, for each
refresh, the fee types that gained or ended a version, and "any" when a firm's details
or the catalog changed. So a kept result is served while none of its fee types changed
since it was made, checked against the snapshot as of the latest commit: a result is
never served stale, it is made again.

A search page reads the search index, which the lineage does not follow (Whoosh is
written after the commit, `feereg reindex` rebuilds it): it is kept with no fee types
and served again only when the index answers the same and its firms read the same.

The store is per process and bounded in characters (least recently used dropped first);
a snapshot rebuilt from scratch has a new lineage, and nothing kept before it is used.
"""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

from sqlalchemy.orm import Session

from . import snapshot as snapshot_service
from .snapshot import Lineage

#: Characters of results a process keeps (a comparison page's table is ~60,000).
MAX_CHARS = 24_000_000


@dataclass
class _Kept:
    lineage: Lineage
    generation: int
    #: None: the result reads more than the lineage follows (a search index); only an
    #: unchanged basis lets it be used again.
    fee_types: frozenset | None
    value: str
    #: What the result was worked out from, when its maker can tell (see `kept`).
    basis: Hashable = None


class ResultCache:
    def __init__(self, max_chars: int = MAX_CHARS):
        self.max_chars = max_chars
        self._kept: OrderedDict[tuple, _Kept] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()
        #: How results were served, per (how, the page's endpoint: the key's first part);
        #: how is "kept", "same basis" (kept, its basis checked) or "made".
        self.served_by_page: Counter = Counter()

    def lookup(self, snap: snapshot_service.Snapshot, key: tuple) -> tuple[_Kept | None, bool]:
        """(what is kept under `key`, whether it still holds on `snap`). Kept and not known
        to hold: one of its fee types changed (or it names none), but no firm's details
        and not the catalog, so its basis may still be the same."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None, False
            self._kept.move_to_end(key)
        generation = kept.generation  # once: another thread may renew it meanwhile
        if kept.lineage is not snap.lineage or generation > snap.generation:
            return None, False
        if generation < snap.generation:
            changed = snap.lineage.fee_types_changed_since(generation, snap.generation)
            if changed is None:
                return None, False
            if kept.fee_types is None or not changed.isdisjoint(kept.fee_types):
                return kept, False
            self.renew(kept, snap)
        return kept, kept.fee_types is not None

    def renew(self, kept: _Kept, snap: snapshot_service.Snapshot) -> None:
        """Checked up to `snap`: the next check starts from there."""
        kept.generation = max(kept.generation, snap.generation)

    def put(self, snap: snapshot_service.Snapshot, key: tuple, fee_types, value: str, basis: Hashable = None) -> None:
        if len(value) > self.max_chars:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._chars -= len(old.value)
            self._kept[key] = _Kept(snap.lineage, snap.generation, None if fee_types is None else frozenset(fee_types),
                                    value, basis)
            self._chars += len(value)
            while self._chars > self.max_chars:
                _key, dropped = self._kept.popitem(last=False)
                self._chars -= len(dropped.value)

    def count(self, how: str, key: tuple) -> None:
        self.served_by_page[how, key[0]] += 1

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._chars = 0
            self.served_by_page.clear()


_cache = ResultCache()


def kept(session: Session, key: tuple, fee_types, make: Callable[[snapshot_service.Snapshot], str],
         basis: Callable[[snapshot_service.Snapshot], Hashable] | None = None, state: str | None = None) -> str:
    """The result under `key`: made by `make(snapshot)` unless one made since the last
    change of any of `fee_types` is kept. `make` reads the registry only through that
    snapshot and rows that the lineage covers (versions, their firms, the catalog).

    basis: for a result that shows only part of what its fee types hold (a quote lists
    the cheapest firms): what the result was worked out from, computed on a snapshot
    more cheaply than the result. While no firm's details and not the catalog changed,
    a kept result whose basis is unchanged is the result: used again.

    fee_types None: the result also reads what the lineage does not follow (the search
    index: written after the commit by some backends, rebuilt by `feereg reindex`), so its
    basis is always asked, and is the whole of what it read there.

    state: the registry's state token the request read (http_cache.state_seen), which
    spares the snapshot's refresh while it is unchanged."""
    if fee_types is None and basis is None:
        raise ValueError("a result kept for any fee type needs a basis")
    snap = snapshot_service.current(session, state)
    found, valid = _cache.lookup(snap, key)
    if valid:
        _cache.count("kept", key)
        return found.value
    now = basis(snap) if basis is not None else None
    if found is not None and now is not None and now == found.basis:
        _cache.renew(found, snap)
        _cache.count("same basis", key)
        return found.value
    _cache.count("made", key)
    value = make(snap)
    _cache.put(snap, key, fee_types, value, now)
    return value


def clear() -> None:
    _cache.clear()
