"""The item store held in memory as columns: what makes a broad search fast.

The SQLite store (store.py) is the derived state on disk; `Store.search` answers a
query with SQL, and does it well while few items match. A broad query ("费" matches
every item, "深圳" every firm's name) makes that SQL visit every matching row, twice
(facets, then the page): 400 ms at 100,000 items. Here the same answer comes from
numpy arrays, one entry per item span:

* the items' texts and facet values are factored into *groups* — items with the same
  fee name, service content, fee type, category, ports, currency and pricing basis.
  A million items form a few thousand groups, so a term's match is decided per group,
  and a facet count is a sum over groups;
* a firm name is the one text that differs item by item (a firm has a handful of
  items): a term that matches firm names is resolved per item with a lookup table;
* the first page walks a precomputed amount order until it has enough hits, so a
  broad query reads a few thousand entries, not every match.

Results are those of `Store.search`, exactly (tests compare the two). The columns are
loaded once per process and follow the store through its change log: each search
checks it (one indexed read) and applies the items changed since, so a publish in
one process shows in every other's next search.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np

from .base import FACETS, Hit
from .documents import KIND_WEIGHTS

#: The item columns a group is made of, in the store's names.
_GROUP_COLUMNS = ("name_key", "content_key", "fee_type", "category", "ports", "currency", "pricing_basis")
_SELECT = ("SELECT item_id, version_id, firm_id, valid_from, valid_until, cny_cents, "
           + ", ".join(_GROUP_COLUMNS) + " FROM item")
#: Facet → the group attribute holding its value (ports are a set per group).
_FACET_ATTRS = {"category": "category", "fee_type": "fee_type", "currency": "currency",
                "pricing_basis": "pricing_basis"}
#: Page walks read the amount order in slices of this many entries.
_SLICE = 4096
#: Up to this many changed rows are placed into the amount orders one by one; more are
#: sorted with the rest (a bulk import).
_MERGE_AT_MOST = 512


def _merged(order: np.ndarray, key: np.ndarray, item_id: np.ndarray, added: int) -> np.ndarray:
    """`order` (positions sorted by (key, item_id), ties by position) with the last `added`
    positions placed where np.lexsort((item_id, key)) would put them."""
    size = len(key)
    new = np.arange(size - added, size)
    new = new[np.lexsort((item_id[new], key[new]))]
    places = []
    for position in new.tolist():
        wanted = (int(key[position]), int(item_id[position]))
        lo, hi = 0, len(order)
        while lo < hi:  # after every equal entry: an added row comes after the older ones
            mid = (lo + hi) // 2
            at = int(order[mid])
            if (int(key[at]), int(item_id[at])) <= wanted:
                lo = mid + 1
            else:
                hi = mid
        places.append(lo)
    return np.insert(order, np.array(places, dtype=np.int64), new.astype(order.dtype))


def _day(value: str | None, cache: dict) -> int:
    """A date as a day number (0 for none); dates repeat, so they are parsed once."""
    if value is None:
        return 0
    day = cache.get(value)
    if day is None:
        day = cache[value] = date.fromisoformat(value).toordinal()
    return day


class Groups:
    """The distinct (texts, facet values) combinations, numbered in order of appearance."""

    def __init__(self):
        self.ids: dict[tuple, int] = {}
        self.rows: list[tuple] = []

    def of(self, key: tuple) -> int:
        gid = self.ids.get(key)
        if gid is None:
            gid = self.ids[key] = len(self.rows)
            self.rows.append(key)
        return gid

    def arrays(self) -> "GroupArrays":
        return GroupArrays(self.rows)


class GroupArrays:
    """Per-group attributes as arrays, for deciding a term's match on all groups at once."""

    def __init__(self, rows: list[tuple]):
        self.size = len(rows)
        self.name_key = np.array([r[0] for r in rows], dtype=np.int64)
        self.content_key = np.array([r[1] for r in rows], dtype=np.int64)
        self.values: dict[str, list[str]] = {}
        self.codes: dict[str, np.ndarray] = {}
        for index, attr in enumerate(_GROUP_COLUMNS[2:], 2):
            values = [r[index] for r in rows]
            vocabulary = sorted(set(values))
            code = {v: i for i, v in enumerate(vocabulary)}
            self.values[attr] = vocabulary
            self.codes[attr] = np.array([code[v] for v in values], dtype=np.int32)
        #: ports: the port sets are few; a port is in some of them.
        self.port_sets = [tuple(p for p in s.split(";") if p) for s in self.values["ports"]]

    def matching(self, attr: str, refs) -> np.ndarray:
        """Groups whose `attr` is one of `refs` (a bool per group)."""
        if attr == "name_key":
            return np.isin(self.name_key, np.array(refs, dtype=np.int64))
        if attr == "content_key":
            return np.isin(self.content_key, np.array(refs, dtype=np.int64))
        wanted = set(refs)
        if attr == "ports":
            table = np.array([any(p in wanted for p in s) for s in self.port_sets] or [False])
        else:
            table = np.array([v in wanted for v in self.values[attr]] or [False])
        return table[self.codes[attr]]


@dataclass
class Columns:
    """One snapshot of the store: immutable once built; a change makes a new one."""

    item_id: np.ndarray      # int64
    version_id: np.ndarray   # int64
    #: Both index tables row by row (np.take, np.bincount): stored as intp, as those want
    #: them, not converted on every search (a million-row copy each).
    firm_id: np.ndarray      # intp
    gid: np.ndarray          # intp
    cny: np.ndarray          # int64
    valid_from: np.ndarray   # int32 day number
    valid_until: np.ndarray  # int32 day number, 0 while open
    alive: np.ndarray        # bool: False once the store has replaced the row
    groups: Groups
    garrays: GroupArrays
    #: Row positions by (cny, item_id) and by (-cny, item_id).
    asc: np.ndarray
    desc: np.ndarray
    build: str
    seq: int

    @classmethod
    def from_rows(cls, rows, groups: Groups, build: str, seq: int, base: "Columns | None" = None,
                  dead: np.ndarray | None = None) -> "Columns":
        days: dict = {}
        item_id, version_id, firm_id, gid, cny, vf, vu = [], [], [], [], [], [], []
        for r in rows:
            item_id.append(r[0])
            version_id.append(r[1])
            firm_id.append(r[2])
            vf.append(_day(r[3], days))
            vu.append(_day(r[4], days))
            cny.append(r[5])
            gid.append(groups.of(r[6:]))
        arrays = [np.array(item_id, dtype=np.int64), np.array(version_id, dtype=np.int64),
                  np.array(firm_id, dtype=np.intp), np.array(gid, dtype=np.intp), np.array(cny, dtype=np.int64),
                  np.array(vf, dtype=np.int32), np.array(vu, dtype=np.int32)]
        alive = np.ones(len(item_id), dtype=bool)
        if base is not None:  # the base's columns, then the changed items' new rows
            arrays = [np.concatenate((old, new)) for old, new in zip(
                (base.item_id, base.version_id, base.firm_id, base.gid, base.cny, base.valid_from,
                 base.valid_until), arrays)]
            alive = np.concatenate((base.alive & ~dead, alive))
        item_id, version_id, firm_id, gid, cny, vf, vu = arrays
        added = len(item_id) - (len(base.item_id) if base is not None else 0)
        if base is not None and added <= _MERGE_AT_MOST:
            # A publish adds a handful of rows: placing them costs a copy of each order (a
            # millisecond or two), sorting a million rows again ~150 ms, in every process.
            asc = _merged(base.asc, cny, item_id, added)
            desc = _merged(base.desc, -cny, item_id, added)
        else:
            asc = np.lexsort((item_id, cny)).astype(np.int32)
            desc = np.lexsort((item_id, -cny)).astype(np.int32)
        same_groups = base is not None and len(groups.rows) == len(base.groups.rows)
        garrays = base.garrays if same_groups else groups.arrays()
        return cls(item_id, version_id, firm_id, gid, cny, vf, vu, alive, groups, garrays, asc, desc,
                   build, seq)

    def per_row(self, per_group: np.ndarray) -> np.ndarray:
        """A value per group spread to the rows (np.take: twice as fast as indexing)."""
        return np.take(per_group, self.gid)

    @cached_property
    def largest_firm_id(self) -> int:
        return int(self.firm_id.max(initial=0))

    # --- per day -------------------------------------------------------------------

    def live(self, today: date) -> "Live":
        cached = getattr(self, "_live", None)
        if cached is None or cached.day != today:
            t = today.toordinal()
            mask = self.alive & (self.valid_from <= t) & ((self.valid_until == 0) | (self.valid_until > t))
            counts = np.bincount(self.gid[mask], minlength=self.garrays.size)
            cached = self._live = Live(today, mask, counts)
        return cached

    # --- searching -----------------------------------------------------------------

    def search(self, matches: list[dict[str, list]], filters: dict[str, str], sort: str, page: int,
               per_page: int, today: date) -> tuple[list[Hit], int, dict]:
        g = self.garrays
        live = self.live(today)
        group_ok = np.ones(g.size, dtype=bool)
        for facet, value in filters.items():
            if value:
                group_ok &= g.matching("ports" if facet == "port" else _FACET_ATTRS[facet], [value])
        group_score = np.zeros(g.size, dtype=np.int16)
        firm_terms = []  # (group weights or None, firm lookup table) of terms that match firm names
        for by_kind in matches:
            weight = np.zeros(g.size, dtype=np.int16)
            for kind, refs in by_kind.items():
                if len(refs) and kind != "f":
                    hit = g.matching(_KIND_ATTRS[kind], refs)
                    np.maximum(weight, np.where(hit, KIND_WEIGHTS[kind], 0).astype(np.int16), out=weight)
            firms = np.asarray(by_kind.get("f", ()), dtype=np.int64)
            if len(firms):
                table = np.zeros(max(int(firms.max()), self.largest_firm_id) + 1, dtype=np.int16)
                table[firms] = KIND_WEIGHTS["f"]
                firm_terms.append((weight if weight.any() else None, table))
            else:
                if not any(len(refs) for refs in by_kind.values()):
                    return [], 0, {facet: [] for facet in FACETS}
                group_ok &= weight > 0
                group_score += weight

        if not firm_terms:  # decided per group: counts are sums over groups
            counts = np.where(group_ok, live.counts, 0)
            mask = score = None
        else:  # a firm name decides some items: per item, then counted by group
            # Each step below reads a million rows: skip the ones that would change nothing.
            mask = live.mask & self.per_row(group_ok) if not group_ok.all() else live.mask.copy()
            score = self.per_row(group_score) if group_score.any() else None
            for weight, table in firm_terms:
                term = np.take(table, self.firm_id)
                if weight is not None:
                    np.maximum(term, self.per_row(weight), out=term)
                mask &= term > 0
                score = term if score is None else score + term
            counts = np.bincount(self.gid[mask], minlength=g.size)
        total = int(counts.sum())
        facets = self._facets(counts)
        if not total:
            return [], 0, facets
        if mask is None:
            mask = live.mask & self.per_row(group_ok)
        wanted = (page - 1) * per_page, per_page
        if sort == "relevance":
            if score is None:
                rows = self._ranked(mask, group_score, group_ok, counts, wanted)
            else:
                rows = self._ranked_items(mask, score, wanted)
        else:
            rows = self._walk(sort == "amount_desc", mask, total, wanted)
        if score is None:
            scores = group_score[self.gid[rows]]
        else:
            scores = score[rows]
        return ([Hit(int(self.item_id[r]), int(self.version_id[r]), float(s)) for r, s in zip(rows, scores)],
                total, facets)

    def _facets(self, counts: np.ndarray) -> dict[str, list[tuple[str, int]]]:
        g = self.garrays
        out = {}
        for facet in FACETS:
            attr = "ports" if facet == "port" else _FACET_ATTRS[facet]
            by_code = np.bincount(g.codes[attr], weights=counts, minlength=len(g.values[attr]))
            found: dict[str, int] = {}
            for code in np.flatnonzero(by_code):
                n = int(by_code[code])
                if facet == "port":
                    for port in g.port_sets[code]:
                        found[port] = found.get(port, 0) + n
                else:
                    found[g.values[attr][code]] = n
            out[facet] = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
        return out

    def _walk(self, descending: bool, mask: np.ndarray, total: int, wanted: tuple[int, int]) -> np.ndarray:
        """Rows `wanted` = (skip, take) of the matches in amount order."""
        skip, take = wanted
        order = self.desc if descending else self.asc
        if skip >= total:
            return order[:0]
        if total * 64 < len(order):  # few matches: sort them rather than walk
            found = np.flatnonzero(mask)
            cny = self.cny[found]
            found = found[np.lexsort((self.item_id[found], -cny if descending else cny))]
            return found[skip:skip + take]
        picked, need, start = [], skip + take, 0
        size = max(_SLICE, need * len(order) // total * 2)
        while need > 0 and start < len(order):
            part = order[start:start + size]
            hits = part[mask[part]]
            picked.append(hits[:need])
            need -= len(picked[-1])
            start += size
            size *= 2
        return np.concatenate(picked)[skip:] if picked else order[:0]

    def _ranked(self, mask, group_score, group_ok, counts, wanted) -> np.ndarray:
        """By score (a group's), then amount: score tiers, highest first, each walked in amount order."""
        skip, take = wanted
        tiers = {}
        for s in np.unique(group_score[group_ok & (counts > 0)])[::-1]:
            tiers[int(s)] = int(counts[group_score == s].sum())
        if len(tiers) == 1:  # the one tier is all of the matches
            return self._by_tiers(tiers, lambda s: mask, skip, take)
        row_score = self.per_row(group_score)  # spread once, not once per tier
        return self._by_tiers(tiers, lambda s: mask & (row_score == s), skip, take)

    def _ranked_items(self, mask, score, wanted) -> np.ndarray:
        skip, take = wanted
        per_score = np.bincount(score[mask])
        tiers = {int(s): int(per_score[s]) for s in np.flatnonzero(per_score)[::-1]}
        return self._by_tiers(tiers, lambda s: mask & (score == s), skip, take)

    def _by_tiers(self, tiers: dict[int, int], tier_mask, skip: int, take: int) -> np.ndarray:
        picked = []
        for s, n in tiers.items():
            if take <= 0:
                break
            if skip >= n:
                skip -= n
                continue
            rows = self._walk(False, tier_mask(s), n, (skip, take))
            picked.append(rows)
            take -= len(rows)
            skip = 0
        return np.concatenate(picked) if picked else self.asc[:0]


@dataclass
class Live:
    day: date
    #: Rows in force on `day`.
    mask: np.ndarray
    #: Rows in force per group.
    counts: np.ndarray


#: Text kind → the group attribute its refs are matched against (firm names are per item).
_KIND_ATTRS = {"n": "name_key", "c": "content_key", "t": "fee_type", "g": "category", "p": "ports"}


class ColumnCache:
    """The columns of one store file, kept in step with it through its change log."""

    def __init__(self):
        self._columns: Columns | None = None
        self._lock = threading.Lock()

    def current(self, conn: sqlite3.Connection) -> Columns:
        """The columns as of the store's latest commit (read in one transaction with it)."""
        conn.execute("BEGIN")
        try:
            build, seq, first = _position(conn)
            columns = self._columns
            # Rebuilt, or so far behind that the trimmed change log no longer covers it.
            if columns is None or columns.build != build or (seq != columns.seq and columns.seq < first - 1):
                columns = Columns.from_rows(conn.execute(_SELECT), Groups(), build, seq)
            elif seq != columns.seq:
                columns = self._apply_changes(conn, columns, build, seq)
        finally:
            conn.execute("COMMIT")
        with self._lock:
            if self._columns is None or (columns.build, columns.seq) != (self._columns.build, self._columns.seq):
                self._columns = columns
        return columns

    @staticmethod
    def _apply_changes(conn, columns: Columns, build: str, seq: int) -> Columns:
        changed = np.array([r[0] for r in conn.execute(
            "SELECT DISTINCT item_id FROM change WHERE seq > ? AND seq <= ?", (columns.seq, seq))], dtype=np.int64)
        dead = np.isin(columns.item_id, changed)
        rows = conn.execute(_SELECT + " WHERE item_id IN (SELECT DISTINCT item_id FROM change WHERE seq > ? "
                            "AND seq <= ?)", (columns.seq, seq)).fetchall()
        # Groups only grow: the snapshot's group numbers stay valid for its rows.
        groups = Groups()
        groups.ids, groups.rows = dict(columns.groups.ids), list(columns.groups.rows)
        return Columns.from_rows(rows, groups, build, seq, base=columns, dead=dead)


def _position(conn: sqlite3.Connection) -> tuple[str, int, int]:
    """The store's build token, its last change and the first change its log still holds."""
    build = conn.execute("SELECT value FROM meta WHERE key = 'build'").fetchone()
    first, last = conn.execute("SELECT min(seq), max(seq) FROM change").fetchone()
    return (build[0] if build else ""), int(last or 0), int(first or 0)
