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

The store is per process and bounded in characters (least recently used dropped first);
a snapshot rebuilt from scratch has a new lineage, and nothing kept before it is used.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from sqlalchemy.orm import Session

from . import snapshot as snapshot_service
from .snapshot import Lineage

#: Characters of results a process keeps (a comparison page's table is ~60,000).
MAX_CHARS = 24_000_000


@dataclass
class _Kept:
    lineage: Lineage
    generation: int
    fee_types: frozenset
    value: str


class ResultCache:
    def __init__(self, max_chars: int = MAX_CHARS):
        self.max_chars = max_chars
        self._kept: OrderedDict[tuple, _Kept] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, snap: snapshot_service.Snapshot, key: tuple) -> str | None:
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            self._kept.move_to_end(key)
        if kept.lineage is not snap.lineage or kept.generation > snap.generation:
            return None
        if kept.generation < snap.generation:
            changed = snap.lineage.fee_types_changed_since(kept.generation, snap.generation)
            if changed is None or not changed.isdisjoint(kept.fee_types):
                return None
            # Checked up to here: the next check starts from this generation.
            kept.generation = snap.generation
        return kept.value

    def put(self, snap: snapshot_service.Snapshot, key: tuple, fee_types, value: str) -> None:
        if len(value) > self.max_chars:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._chars -= len(old.value)
            self._kept[key] = _Kept(snap.lineage, snap.generation, frozenset(fee_types), value)
            self._chars += len(value)
            while self._chars > self.max_chars:
                _key, dropped = self._kept.popitem(last=False)
                self._chars -= len(dropped.value)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._chars = 0


_cache = ResultCache()


def kept(session: Session, key: tuple, fee_types, make: Callable[[], str]) -> str:
    """The result under `key`, made by `make()` unless one made since the last change of
    any of `fee_types` is kept. `make` must read the registry only through the snapshot
    and rows that the lineage covers (versions, their firms, the catalog)."""
    # Taken before making: a commit while making is then checked again next time.
    snap = snapshot_service.current(session)
    found = _cache.get(snap, key)
    if found is not None:
        return found
    value = make()
    _cache.put(snap, key, fee_types, value)
    return value


def clear() -> None:
    _cache.clear()
