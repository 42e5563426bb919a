"""PEER_OUTLIER on publish: a peer family's statistics from the comparison snapshot.

A change moves its family's median for every member, so a publish judges the whole
family again — 60,000 items at a million. Reading them from the database took seconds;
the snapshot (services/snapshot.py) already holds every publish version's family codes,
amount, currency and ports as columns in each process, so the statistics are numpy over
those, and the database is read only for the few members at or above the outlier
multiple (who are judged in full by anomaly_rules.peer_outlier, as the full scan judges
them).

Who is a member: an item whose newest version (highest seq) is a publish of the family
(checks.py's rule). Within an item ids follow seq (its versions are appended under its
firm's lock), so that is the item's highest-id publish version in the snapshot, unless
a withdrawal came after it. Withdrawals are not in the snapshot: `Withdrawals` keeps
their (id, item id) per process, read incrementally as far as the snapshot has read.
The open version (superseded_from empty) is not the newest one when a change was
published with an earlier effective date than a pending one, hence this longer way.

The snapshot holds committed data only: items changed in the publishing transaction are
taken out of it and their rows, read in the transaction, put in their place.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection, Engine

from ..models import FeeItemVersion
from . import anomaly_rules as rules
from . import snapshot as snapshot_service

V = FeeItemVersion


# --- withdrawals, kept beside the snapshot ----------------------------------------------------

class Withdrawals:
    """Every withdrawal version's (id, item id), read as far as a snapshot has read.

    Versions are immutable and appended: each refresh reads the ids the snapshot has
    read since (and the gaps it had, which may have committed since). A database
    emptied and filled again is recognised as the snapshot does: the last id read now
    holds another hash."""

    def __init__(self):
        self._lock = threading.Lock()
        self._forget()

    def _forget(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.item_ids = np.zeros(0, np.int64)
        self._upto = 0
        self._upto_hash = None
        self._gaps: list[tuple[int, int]] = []

    def current(self, conn: Connection, position: snapshot_service.Position) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._upto and (position.version_id < self._upto or conn.scalar(
                    select(V.hash).where(V.id == self._upto)) != self._upto_hash):
                self._forget()
            stmt = select(V.id, V.item_id).where(V.kind == "withdraw", V.id <= position.version_id)
            if self._upto:
                stmt = stmt.where(or_(V.id > self._upto, *(and_(V.id >= lo, V.id <= hi) for lo, hi in self._gaps)))
            rows = conn.execute(stmt).all()
            if rows:
                found = np.array(rows, dtype=np.int64).reshape(-1, 2)
                self.ids = np.concatenate((self.ids, found[:, 0]))
                self.item_ids = np.concatenate((self.item_ids, found[:, 1]))
            if position.version_id != self._upto:
                self._upto = position.version_id
                self._upto_hash = conn.scalar(select(V.hash).where(V.id == self._upto)) if self._upto else None
            # What the snapshot has not read yet may still commit: looked for again next time.
            self._gaps = [(lo, hi) for lo, hi, _seen in position.version_gaps]
            return self.ids, self.item_ids


_withdrawals: WeakKeyDictionary = WeakKeyDictionary()
_withdrawals_lock = threading.Lock()


def _withdrawals_of(engine: Engine) -> Withdrawals:
    with _withdrawals_lock:
        found = _withdrawals.get(engine)
        if found is None:
            found = _withdrawals[engine] = Withdrawals()
        return found


# --- the family's members ---------------------------------------------------------------------

@dataclass
class Committed:
    """The committed members of one family (one entry each), from the snapshot."""

    item_id: np.ndarray
    version_id: np.ndarray
    firm_id: np.ndarray
    cents: np.ndarray
    currency: np.ndarray  # snapshot currency codes
    ports: np.ndarray     # snapshot port-list codes


def committed_members(snap: snapshot_service.Snapshot, withdrawals: tuple[np.ndarray, np.ndarray],
                      key: tuple, leave_out: np.ndarray) -> Committed:
    """The family's members as of the snapshot, without the items `leave_out` (sorted)."""
    v, vocab = snap.versions, snap.vocab
    codes = (vocab.fee_type.find(key[0]), vocab.unit.find(key[1]), vocab.size.find(key[2]),
             vocab.scope.find(key[3]))
    if min(codes) < 0:
        rows = np.zeros(0, np.int64)
    else:
        rows = np.flatnonzero(v.fee_type == codes[0])  # the narrowest column first
        rows = rows[v.alive[rows] & (v.unit[rows] == codes[1]) & (v.size[rows] == codes[2])
                    & (v.scope[rows] == codes[3])]
    if len(rows):
        items = v.item_id[rows]
        # An item's newest publish version may be of another family: look at all of them.
        size = int(max(items.max(), v.item_id.max())) + 1
        newest = np.zeros(size, np.int64)
        ours = np.zeros(size, bool)
        ours[items] = True
        every = np.flatnonzero(v.alive & ours[v.item_id])
        np.maximum.at(newest, v.item_id[every], v.id[every])
        w_ids, w_items = withdrawals
        inside = w_items < size
        np.maximum.at(newest, w_items[inside], w_ids[inside])
        keep = newest[items] == v.id[rows]
        if len(leave_out):
            keep &= ~np.isin(items, leave_out)
        rows = rows[keep]
    return Committed(v.item_id[rows], v.id[rows], v.firm_id[rows], v.cents[rows], v.currency[rows], v.ports[rows])


def amounts_cny(snap: snapshot_service.Snapshot, members: Committed, ctx: rules.Context) -> np.ndarray:
    """Each member's amount in CNY as a float, exactly as checks.py computes it from the
    Decimal (cents / 100 is the same correctly rounded double); NaN without a rate."""
    out = members.cents / 100.0
    texts = snap.vocab.currency.texts
    for code in np.unique(members.currency):
        currency = texts[code]
        if currency == "CNY":
            continue
        where = members.currency == code
        distinct, inverse = np.unique(members.cents[where], return_inverse=True)
        converted = [ctx.cny(Decimal(int(c)).scaleb(-2), currency) for c in distinct.tolist()]
        values = np.array([np.nan if c is None else float(c) for c in converted], dtype=np.float64)
        out[where] = values[inverse]
    return out


def port_counts(snap: snapshot_service.Snapshot, members: Committed) -> dict[str, np.ndarray]:
    """Port → how many times each member counts in that port's group: the ports its
    version names or, naming none, the ports its firm serves (as Entry.port_list)."""
    texts = snap.vocab.ports.texts
    named: dict[int, list[str]] = {}
    unnamed = np.zeros(len(texts) or 1, bool)
    for code in np.unique(members.ports).tolist():
        if texts[code]:
            named[code] = texts[code].split(";")
        else:
            unnamed[code] = True
    ports = {p for listed in named.values() for p in listed}
    firmless = unnamed[members.ports]
    if firmless.any():
        ports |= set(snap.firms.serves)
    counts: dict[str, np.ndarray] = {}
    for port in ports:
        per_code = np.zeros(len(texts) or 1, np.int64)
        for code, listed in named.items():
            per_code[code] = listed.count(port)
        count = per_code[members.ports]
        if firmless.any():
            served = snap.firms.serves.get(port)
            if served is not None:
                firms = members.firm_id
                known = firms < len(served)
                by_firm = np.zeros(len(firms), bool)
                by_firm[known] = served[firms[known]]
                count = count + (firmless & by_firm)
        if count.any():
            counts[port] = count
    return counts


# --- statistics -------------------------------------------------------------------------------

def median_sorted(ordered: np.ndarray) -> float:
    """statistics.median of sorted floats, with its arithmetic."""
    n = len(ordered)
    if n % 2 == 1:
        return float(ordered[n // 2])
    i = n // 2
    return (float(ordered[i - 1]) + float(ordered[i])) / 2


def stats_sorted(ordered: np.ndarray) -> rules.PeerStats:
    """anomaly_rules.peer_stats of sorted floats, float for float (median, MAD, inclusive
    quartiles as statistics.quantiles computes them)."""
    n = len(ordered)
    median = median_sorted(ordered)
    deviations = np.abs(ordered - median)
    middle = sorted({(n - 1) // 2, n // 2})  # the middle elements are all a median reads
    mad = median_sorted(np.partition(deviations, middle))
    if n >= 2:
        quartiles = []
        for i in (1, 3):
            j, delta = divmod(i * (n - 1), 4)
            quartiles.append((float(ordered[j]) * (4 - delta) + float(ordered[j + 1]) * delta) / 4)
        q1, q3 = quartiles
    else:
        q1 = q3 = median
    return rules.PeerStats(n, median, mad, q1, q3)


def current(session) -> tuple[snapshot_service.Snapshot, tuple[np.ndarray, np.ndarray]]:
    """The snapshot and the withdrawals read as far as it has read."""
    snap = snapshot_service.current(session)
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)
    with engine.connect() as conn:  # committed data only, as the snapshot
        return snap, _withdrawals_of(engine).current(conn, snap.position)
