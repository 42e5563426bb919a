"""The registry's published versions held in memory as columns, for comparisons and quotes.

A comparison or a quote at a busy port reads tens of thousands of versions out of a
million, and ranks them by amounts that depend on dated exchange rates: SQL that
fetches the rows costs more than the whole answer may take. Here every publish version
is one entry in numpy arrays (codes for the short texts, cents for the amount, day
numbers for the validity range effective_from ≤ D < superseded_from), so "in force on D,
of these fee types, at this port" is a few vectorised comparisons, and the caller reads
from the database only the rows it shows.

Versions are never changed once written except for superseded_from, which the registry
service sets in the transaction that appends the next version of the item. So a snapshot
follows the database by reading the versions appended since it was built, and re-reading
the items they belong to. It reads from its own connection: only committed data, never a
request's half-done transaction.

Appended since: ids above the highest one seen, plus the gaps below it. On PostgreSQL
ids come from a sequence and commit out of order — a transaction holding id 500 may
commit after one holding 501 — so an id skipped over is looked for again on each
refresh until it appears or GAP_WAIT has passed (a rolled-back insert leaves a gap
for good). As a last guard, every COUNT_CHECK_EVERY seconds the number of versions
is compared with the snapshot's, and a difference rebuilds it.

Firms (category, status, ports) change without a new version. Every such change is
audited (services.firms), so the snapshot follows the audit log the same way: a firm
event since the last refresh re-reads that firm. Firms are also read whenever a version
names one the snapshot does not know.

A database emptied and filled again (tests, a restore) is recognised by the hash of the
last version seen: versions are immutable, so if that id now holds another hash, the
snapshot is rebuilt.

A page that already read the registry's state token from Redis (http_cache: renewed
after every commit that wrote public data, in every process) passes it in: while the
token is the one the last refresh began under, no such commit has landed since, and the
refresh's statement is skipped. Changes made behind the application's back (SQL by hand)
renew no token, so the skip is trusted for STATE_TRUSTED seconds at most.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import BigInteger, String, and_, cast, func, literal_column, or_, select, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from ..models import AuditEvent, FeeItemVersion, Firm, FirmPort

#: Seconds an id skipped over is looked for again (a transaction still open when a later one committed).
GAP_WAIT = 900
#: Seconds between checks that the snapshot holds as many versions as the database.
COUNT_CHECK_EVERY = 60
#: Seconds a refresh is skipped for while the registry's state token stays the same: the
#: bound on how long a change made outside the application goes unseen by the pages.
STATE_TRUSTED = 2.0
#: Audited actions that change what the snapshot holds of a firm.
FIRM_ACTIONS = ("firm.register", "firm.create", "firm.update", "firm.suspend", "firm.reinstate",
                "firms.load", "import.firms")
#: Audited actions after which no result read off the snapshot may be kept (result_cache):
#: fee type names and rules changed.
CATALOG_ACTIONS = ("catalog.load",)
#: validity end of a version not superseded: after every real day.
OPEN = np.iinfo(np.int32).max
_CHUNK = 500
#: Up to this many firms, Snapshot.rows finds a firm's versions by comparing ids.
_FEW_FIRMS = 8
#: Rows read and turned into arrays at a time when a snapshot is built.
_LOAD_SLICE = 50_000
_V = FeeItemVersion
_COLUMNS = (_V.id, _V.item_id, _V.firm_id, _V.fee_type_code, _V.unit, _V.container_size, _V.cargo_scope,
            _V.trade, _V.direction, _V.amount, _V.currency, _V.tiers, _V.ports, _V.effective_from,
            _V.superseded_from)


class Vocabulary:
    """Texts numbered in order of first sight: codes only grow, so old arrays stay valid."""

    def __init__(self):
        self.codes: dict[str, int] = {}
        self.texts: list[str] = []

    def code(self, text: str) -> int:
        found = self.codes.get(text)
        if found is None:
            found = self.codes[text] = len(self.texts)
            self.texts.append(text)
        return found

    def find(self, text: str) -> int:
        """The code of `text`, or -1 when no version has it."""
        return self.codes.get(text, -1)

    def table(self, wanted) -> np.ndarray:
        """A bool per code: is its text one of `wanted`."""
        wanted = set(wanted)
        return np.array([t in wanted for t in self.texts] or [False], dtype=bool)

    def copy(self) -> "Vocabulary":
        other = Vocabulary()
        other.codes, other.texts = dict(self.codes), list(self.texts)
        return other


@dataclass
class Vocabularies:
    fee_type: Vocabulary = field(default_factory=Vocabulary)
    unit: Vocabulary = field(default_factory=Vocabulary)
    size: Vocabulary = field(default_factory=Vocabulary)
    scope: Vocabulary = field(default_factory=Vocabulary)
    trade: Vocabulary = field(default_factory=Vocabulary)
    direction: Vocabulary = field(default_factory=Vocabulary)
    currency: Vocabulary = field(default_factory=Vocabulary)
    tiers: Vocabulary = field(default_factory=Vocabulary)
    #: A version's port list, as one text ("" for none: the firm's ports apply).
    ports: Vocabulary = field(default_factory=Vocabulary)
    category: Vocabulary = field(default_factory=Vocabulary)

    def copy(self) -> "Vocabularies":
        return Vocabularies(**{name: getattr(self, name).copy() for name in self.__dataclass_fields__})


_ARRAYS = (("id", np.int64), ("item_id", np.int64), ("firm_id", np.int32), ("fee_type", np.int16),
           ("unit", np.int16), ("size", np.int16), ("scope", np.int16), ("trade", np.int16),
           ("direction", np.int16), ("cents", np.int64), ("currency", np.int16), ("tiers", np.int32),
           ("ports", np.int32), ("valid_from", np.int32), ("valid_until", np.int32))


@dataclass
class Versions:
    """One entry per publish version; `alive` False once a refresh re-read its item."""

    id: np.ndarray
    item_id: np.ndarray
    firm_id: np.ndarray
    fee_type: np.ndarray
    unit: np.ndarray
    size: np.ndarray
    scope: np.ndarray
    trade: np.ndarray
    direction: np.ndarray
    cents: np.ndarray
    currency: np.ndarray
    tiers: np.ndarray
    ports: np.ndarray
    valid_from: np.ndarray
    valid_until: np.ndarray
    alive: np.ndarray
    #: The buffers the columns are views of, when they have room to grow (see `extended`).
    store: "_Buffers | None" = field(default=None, repr=False, compare=False)

    @classmethod
    def from_rows(cls, rows, vocab: Vocabularies) -> "Versions":
        columns: list[list] = [[] for _ in _ARRAYS]
        texts = (vocab.fee_type, vocab.unit, vocab.size, vocab.scope, vocab.trade, vocab.direction)
        days: dict = {None: OPEN}
        for r in rows:
            columns[0].append(r[0])
            columns[1].append(r[1])
            columns[2].append(r[2])
            for index, v in enumerate(texts):
                columns[3 + index].append(v.code(r[3 + index]))
            columns[9].append(int(r[9] * 100))
            columns[10].append(vocab.currency.code(r[10]))
            columns[11].append(vocab.tiers.code(r[11]))
            columns[12].append(vocab.ports.code(r[12]))
            for index, value in ((13, r[13]), (14, r[14])):
                day = days.get(value)
                if day is None:
                    day = days[value] = _ordinal(value)
                columns[index].append(day)
        arrays = {name: np.array(values, dtype=dtype) for (name, dtype), values in zip(_ARRAYS, columns)}
        return cls(**arrays, alive=np.ones(len(columns[0]), dtype=bool))

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def concatenated(cls, parts: list["Versions"]) -> "Versions":
        if not parts:
            return cls.from_rows([], Vocabularies())
        if len(parts) == 1:
            return parts[0]
        arrays = {name: np.concatenate([getattr(p, name) for p in parts]) for name, _ in _ARRAYS}
        return cls(**arrays, alive=np.concatenate([p.alive for p in parts]))

    def extended(self, dead_items: np.ndarray, new: "Versions") -> "Versions":
        """These versions with the items `dead_items` replaced by `new`'s rows. Replaced rows
        are dropped once they are a fifth of the whole, so a long-running process's arrays
        do not grow with every publish.

        A publish appends a row or two to a million: copying every column each time cost
        tens of milliseconds per publish. So the columns are views of buffers with room to
        spare, and new rows are written past the end. Snapshots already handed out keep
        their shorter views and never see those rows; only `alive`, which changes inside
        the range, is copied. Refreshes run under the cache's lock; a buffer is written
        past its end only by the snapshot that ends where the buffer was filled, so two
        snapshots extended from one base never write into each other's rows."""
        if len(dead_items) <= 16:  # a publish's few items: a pass each beats np.isin's sort
            dead = np.zeros(len(self), dtype=bool)
            for item in dead_items:
                dead |= self.item_id == item
        else:
            dead = np.isin(self.item_id, dead_items)
        alive = self.alive & ~dead
        if np.count_nonzero(~alive) * 5 > len(alive):
            arrays = {name: np.concatenate((getattr(self, name)[alive], getattr(new, name))) for name, _ in _ARRAYS}
            return Versions(**arrays, alive=np.ones(len(arrays["id"]), dtype=bool))
        n, k = len(self), len(new)
        store = self.store
        if store is None or store.filled != n or store.capacity < n + k:
            store = _Buffers.holding(self, n + k)
        for name, _ in _ARRAYS:
            store.arrays[name][n:n + k] = getattr(new, name)
        store.filled = n + k
        return Versions(**{name: store.arrays[name][:n + k] for name, _ in _ARRAYS},
                        alive=np.concatenate((alive, new.alive)), store=store)

    def with_room(self) -> "Versions":
        """The same versions in buffers with spare rows, so the first publishes after a
        build append rather than copy."""
        store = _Buffers.holding(self, len(self))
        return replace(self, **{name: store.arrays[name][:len(self)] for name, _ in _ARRAYS}, store=store)

    def in_force(self, on: date) -> np.ndarray:
        day = on.toordinal()
        return self.alive & (self.valid_from <= day) & (self.valid_until > day)


class _Buffers:
    """Columns with spare rows past `filled`, shared by the snapshots that view them."""

    #: Spare rows allocated when a buffer is (re)made: an eighth of its rows, at least 1,024.
    SPARE = 8

    def __init__(self, arrays: dict[str, np.ndarray], filled: int):
        self.arrays, self.filled = arrays, filled
        self.capacity = len(arrays["id"])

    @classmethod
    def holding(cls, versions: "Versions", needed: int) -> "_Buffers":
        n = len(versions)
        capacity = needed + max(1024, needed // cls.SPARE)
        arrays = {}
        for name, dtype in _ARRAYS:
            buffer = np.empty(capacity, dtype=dtype)
            buffer[:n] = getattr(versions, name)
            arrays[name] = buffer
        return cls(arrays, n)


def _ordinal(value) -> int:
    if isinstance(value, str):  # SQLite through a plain connection may hand back text
        value = date.fromisoformat(value[:10])
    return value.toordinal()


@dataclass
class Firms:
    """Per firm id (arrays indexed by id): known, category code, active, and the ports served."""

    known: np.ndarray
    category: np.ndarray
    active: np.ndarray
    #: port → bool per firm id.
    serves: dict[str, np.ndarray]
    names_zh: list
    names_en: list
    _ranks: dict = field(default_factory=dict)

    @classmethod
    def empty(cls) -> "Firms":
        return cls(np.zeros(1, bool), np.zeros(1, np.int16), np.zeros(1, bool), {}, [""], [""])

    def grown(self, size: int) -> "Firms":
        if size <= len(self.known):
            return Firms(self.known.copy(), self.category.copy(), self.active.copy(),
                         {p: a.copy() for p, a in self.serves.items()}, list(self.names_zh), list(self.names_en))
        extra = size - len(self.known)

        def pad(a):
            return np.concatenate((a, np.zeros(extra, dtype=a.dtype)))

        return Firms(pad(self.known), pad(self.category), pad(self.active),
                     {p: pad(a) for p, a in self.serves.items()},
                     self.names_zh + [""] * extra, self.names_en + [""] * extra)

    def serving(self, port: str) -> np.ndarray:
        return self.serves.get(port, np.zeros(len(self.known), dtype=bool))

    def name_rank(self, lang: str) -> np.ndarray:
        """A firm's place in the order of its displayed name (lower case), then id: sorting
        by it sorts as the pages' name sort does."""
        key = "en" if lang.startswith("en") else "zh"
        rank = self._ranks.get(key)
        if rank is None:
            names = [((en or zh) if key == "en" else zh).lower() for zh, en in zip(self.names_zh, self.names_en)]
            order = sorted(range(len(names)), key=names.__getitem__)  # stable: equal names by id
            rank = np.empty(len(names), dtype=np.int32)
            rank[np.array(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int32)
            self._ranks[key] = rank
        return rank


@dataclass
class Position:
    """How far the snapshot has read the two append-only tables it follows."""

    version_id: int = 0
    version_hash: str = ""
    #: [low, high, first seen (monotonic)]: ids skipped over, looked for again.
    version_gaps: list = field(default_factory=list)
    audit_id: int = 0
    audit_gaps: list = field(default_factory=list)
    count_checked: float = 0.0
    #: Versions (all kinds) the snapshot has read.
    version_count: int = 0


class Lineage:
    """The snapshots refreshed from one build, numbered, with what each refresh touched:
    the firms (what lets a result computed per firm on an older snapshot be brought up to
    date by computing again only the firms that changed: quote_rank), and the fee types
    (what lets a result read off a few fee types be kept while none of them changed:
    result_cache)."""

    #: Refreshes remembered; a result older than that is computed afresh.
    KEPT = 512

    def __init__(self):
        #: generation → (firms, fee types); None where not known.
        self._changes: dict[int, tuple[frozenset | None, frozenset | None]] = {}
        self._lock = threading.Lock()

    def record(self, generation: int, firms: frozenset | None, fee_types: frozenset | None = None) -> None:
        with self._lock:
            self._changes[generation] = (firms, fee_types)
            for old in [g for g in self._changes if g <= generation - self.KEPT]:
                del self._changes[old]

    def _since(self, older: int, newer: int, which: int) -> set | None:
        found: set = set()
        with self._lock:
            for generation in range(older + 1, newer + 1):
                change = self._changes.get(generation)
                if change is None or change[which] is None:
                    return None
                found |= change[which]
        return found

    def changed_since(self, older: int, newer: int) -> set[int] | None:
        """The firms whose versions or details changed from generation `older` to `newer`,
        or None when that is not known (too old, or a change of every firm's rows)."""
        return self._since(older, newer, 0)

    def fee_types_changed_since(self, older: int, newer: int) -> set[str] | None:
        """The fee types with a version added or ended from generation `older` to `newer`,
        or None when any might have changed (too old, a firm or the catalog changed)."""
        return self._since(older, newer, 1)


@dataclass
class Snapshot:
    versions: Versions
    firms: Firms
    vocab: Vocabularies
    position: Position
    lineage: Lineage = field(default_factory=Lineage)
    generation: int = 0
    _in_force: tuple | None = None
    _grouped: tuple | None = None

    def rows(self, on: date, fee_types=None, units=None, sizes=None, scopes=None, trades=None, directions=None,
             categories=None, port: str | None = None, active_only: bool = False,
             firm_serves_port: bool = False, firms: np.ndarray | None = None) -> np.ndarray:
        """Positions of the versions in force on `on` meeting every condition given; each
        condition is the set of texts allowed for that column. `port`: the version names
        the port, or names none and its firm serves it. `firms`: a bool per firm id."""
        v, vocab = self.versions, self.vocab
        if firms is not None:  # a few firms: narrower than any fee type
            ids = np.flatnonzero(firms)
            if len(ids) <= _FEW_FIRMS:  # a comparison per firm costs less than a lookup per version
                rows = np.sort(np.concatenate([np.flatnonzero(v.firm_id == f) for f in ids.tolist()]
                                              or [np.zeros(0, np.int64)]))
                rows = rows[self.in_force(on)[rows]]
            else:
                rows = np.flatnonzero(self.in_force(on) & firms[v.firm_id])
            if fee_types is not None:
                rows = rows[vocab.fee_type.table(fee_types)[v.fee_type[rows]]]
        elif fee_types is None:
            rows = np.flatnonzero(self.in_force(on))
        else:  # the narrowest condition first, from the day's rows grouped by fee type
            grouped, starts = self._by_fee_type(on)
            codes = sorted(c for c in map(vocab.fee_type.find, set(fee_types)) if c >= 0)
            rows = np.concatenate([grouped[starts[c]:starts[c + 1]] for c in codes] or [grouped[:0]])
        keep = np.ones(len(rows), dtype=bool)
        for values, column, vocabulary in ((units, v.unit, vocab.unit), (sizes, v.size, vocab.size),
                                           (scopes, v.scope, vocab.scope), (trades, v.trade, vocab.trade),
                                           (directions, v.direction, vocab.direction)):
            if values is not None:
                keep &= vocabulary.table(values)[column[rows]]
        firm_ids = v.firm_id[rows]
        if categories is not None:
            keep &= self.vocab.category.table(categories)[self.firms.category[firm_ids]]
        if active_only:
            keep &= self.firms.active[firm_ids]
        if port:
            serves = self.firms.serving(port)[firm_ids]
            named = np.array([port in text.split(";") for text in vocab.ports.texts] or [False])
            unnamed = vocab.ports.table([""])
            codes = v.ports[rows]
            keep &= named[codes] | (unnamed[codes] & serves)
            if firm_serves_port:
                keep &= serves
        return rows[keep]

    def _by_fee_type(self, on: date) -> tuple[np.ndarray, np.ndarray]:
        """The positions in force on `on`, grouped by fee type code, and where each code's start."""
        cached = self._grouped
        if cached is None or cached[0] != on:
            rows = np.flatnonzero(self.in_force(on))
            codes = self.versions.fee_type[rows]
            grouped = rows[np.argsort(codes, kind="stable")]
            starts = np.concatenate(([0], np.cumsum(np.bincount(codes, minlength=len(self.vocab.fee_type.texts)))))
            cached = self._grouped = (on, grouped, starts)
        return cached[1], cached[2]

    def in_force(self, on: date) -> np.ndarray:
        """The versions in force on `on` (kept for the last day asked: pages ask for today)."""
        cached = self._in_force
        if cached is None or cached[0] != on:
            cached = self._in_force = (on, self.versions.in_force(on))
        return cached[1]

    def cny_cents(self, rows: np.ndarray, table) -> tuple[np.ndarray, np.ndarray]:
        """(amount in CNY cents, converted?) per row, exactly as rates.RateTable.to_cny."""
        v = self.versions
        cents = v.cents[rows]
        out = np.zeros(len(rows), dtype=np.int64)
        converted = np.zeros(len(rows), dtype=bool)
        currencies = v.currency[rows]
        for code in np.flatnonzero(np.bincount(currencies, minlength=len(self.vocab.currency.texts))):
            where = currencies == code
            currency = self.vocab.currency.texts[code]
            rate = table.rate(currency)
            if rate is None:
                continue
            converted |= where
            if rate == 1:
                out[where] = cents[where]
                continue
            distinct, inverse = np.unique(cents[where], return_inverse=True)
            values = [int(table.to_cny(Decimal(int(c)).scaleb(-2), currency).scaleb(2)) for c in distinct]
            out[where] = np.array(values, dtype=np.int64)[inverse]
        return out, converted


@dataclass(frozen=True, slots=True)
class PricingFields:
    """What the snapshot holds of a version: enough to choose and price it (quote_rules),
    not to show it (no names)."""

    id: int
    item_id: int
    firm_id: int
    fee_type_code: str
    unit: str
    container_size: str
    cargo_scope: str
    trade: str
    direction: str
    amount: Decimal
    currency: str
    tiers: str


def pricing_fields(snap: Snapshot, positions: np.ndarray) -> list[PricingFields]:
    v, vocab = snap.versions, snap.vocab

    def texts(name: str) -> list[str]:
        return np.array(getattr(vocab, name).texts, dtype=object)[getattr(v, name)[positions]].tolist()

    columns = (v.id[positions].tolist(), v.item_id[positions].tolist(), v.firm_id[positions].tolist(),
               texts("fee_type"), texts("unit"), texts("size"), texts("scope"), texts("trade"), texts("direction"),
               [Decimal(c).scaleb(-2) for c in v.cents[positions].tolist()], texts("currency"), texts("tiers"))
    return [PricingFields(*values) for values in zip(*columns)]


class SnapshotCache:
    """The snapshot of one database, refreshed on each use (one indexed read when nothing changed)."""

    def __init__(self):
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        #: The state token the last refresh began under, and when (monotonic).
        self._state: str | None = None
        self._refreshed = 0.0
        #: Refreshes skipped on an unchanged state token (read by the tests).
        self.skipped = 0

    def current(self, engine: Engine, state: str | None = None) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if (state is not None and state == self._state and self._snapshot is not None
                    and now - self._refreshed < STATE_TRUSTED):
                self.skipped += 1
                return self._snapshot
            with engine.connect() as conn:
                self._snapshot = _refresh(conn, self._snapshot)
            # The token was read before this refresh began: a commit that renewed it since
            # may be missing here, and its new token makes the next request refresh.
            self._state, self._refreshed = state, now
            return self._snapshot


_caches: WeakKeyDictionary = WeakKeyDictionary()
_caches_lock = threading.Lock()


def current(session: Session, state: str | None = None) -> Snapshot:
    """The snapshot of the session's database, as of its latest commit.

    state: the registry's state token this request read from Redis, if it did (see the
    module's text); None always refreshes."""
    return cache_of(session).current(engine_of(session), state)


def cache_of(session: Session) -> SnapshotCache:
    engine = engine_of(session)
    with _caches_lock:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = SnapshotCache()
    return cache


def engine_of(session: Session) -> Engine:
    """The engine the session reads, as the per-database caches are keyed."""
    engine = session.get_bind()
    return getattr(engine, "engine", engine)


# --- reading the database -----------------------------------------------------------------

def _refresh(conn: Connection, snapshot: Snapshot | None) -> Snapshot:
    if snapshot is None:
        return _build(conn)
    now = time.monotonic()
    _forget_old_gaps(snapshot.position, now)
    still_valid, new_versions, events = _read_since(conn, snapshot.position)
    if not still_valid:
        return _build(conn)
    snapshot = _caught_up(conn, snapshot, new_versions, events, now) or snapshot
    if now - snapshot.position.count_checked > COUNT_CHECK_EVERY:
        # A version committed under an id the gaps no longer cover: counted, never read.
        if _count_upto(conn, snapshot.position) != snapshot.position.version_count:
            snapshot = _catch_up(conn, snapshot, now) or snapshot
            if _count_upto(conn, snapshot.position) != snapshot.position.version_count:
                return _build(conn)
        snapshot.position.count_checked = now
    return snapshot


def _count_upto(conn: Connection, position: Position) -> int:
    return conn.scalar(select(func.count()).select_from(_V).where(_V.id <= position.version_id))


def _read_since(conn: Connection, position: Position) -> tuple[bool, list, list]:
    """In one statement (every comparison and quote asks, and a round trip costs more than
    the reading): whether the last version read still holds its hash, and the versions and
    audit events appended since.

    Versions are immutable: the last one read still holds its hash unless the database
    was emptied (or replaced) since."""
    number, text = cast(None, BigInteger), cast(None, String)
    parts = [
        select(literal_column("1").label("kind"), _V.id, _V.item_id.label("number"), _V.firm_id, text.label("text"))
        .where(_in_ranges(_V.id, position.version_id, position.version_gaps)),
        select(literal_column("2"), AuditEvent.id, number, AuditEvent.firm_id, AuditEvent.action)
        .where(_in_ranges(AuditEvent.id, position.audit_id, position.audit_gaps)),
    ]
    if position.version_id:
        parts.append(select(literal_column("0"), _V.id, number, number, _V.hash).where(_V.id == position.version_id))
    rows = conn.execute(union_all(*parts)).all()
    still_valid = not position.version_id or any(r.kind == 0 and r.text == position.version_hash for r in rows)
    new_versions = [_Appended(r.id, r.number, r.firm_id) for r in rows if r.kind == 1]
    events = [_Event(r.id, r.text, r.firm_id) for r in rows if r.kind == 2]
    return still_valid, new_versions, events


@dataclass(frozen=True, slots=True)
class _Appended:
    id: int
    item_id: int
    firm_id: int


@dataclass(frozen=True, slots=True)
class _Event:
    id: int
    action: str
    firm_id: int | None


def _build(conn: Connection) -> Snapshot:
    vocab = Vocabularies()
    position = Position(count_checked=time.monotonic())
    top = conn.scalar(select(func.max(_V.id))) or 0
    position.audit_id = conn.scalar(select(func.max(AuditEvent.id))) or 0
    # In slices: a million rows as Python tuples at once would take over a gigabyte.
    result = conn.execution_options(yield_per=_LOAD_SLICE).execute(
        select(*_COLUMNS).where(_V.kind == "publish", _V.id <= top))
    versions = Versions.concatenated([Versions.from_rows(part, vocab) for part in result.partitions()])
    versions = versions.with_room()
    ids = np.concatenate([np.array(part, dtype=np.int64) for part in conn.execution_options(
        yield_per=_LOAD_SLICE).execute(select(_V.id).where(_V.id <= top)).scalars().partitions()]
        or [np.zeros(0, np.int64)])
    position.version_count = len(ids)
    position.version_gaps = _gaps(ids, 0, top, time.monotonic())
    if top:
        position.version_id = top
        position.version_hash = conn.scalar(select(_V.hash).where(_V.id == top))
    firms = _read_firms(conn, Firms.empty(), None, vocab)
    return Snapshot(versions, firms, vocab, position)


def _gaps(found_ids: np.ndarray, low: int, high: int, seen: float) -> list:
    """The ranges of ids in (low, high] not in found_ids (sorted or not)."""
    ids = np.unique(found_ids[(found_ids > low) & (found_ids <= high)])
    bounds = np.concatenate(([low], ids, [high + 1]))
    gaps = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b - a > 1:
            gaps.append([int(a) + 1, int(b) - 1, seen])
    return gaps


def _in_ranges(column, low: int, ranges: list):
    """Ids above `low`, or in one of the gap ranges."""
    return or_(column > low, *(and_(column >= lo, column <= hi) for lo, hi, _seen in ranges))


def _forget_old_gaps(position: Position, now: float) -> None:
    position.version_gaps = [g for g in position.version_gaps if now - g[2] < GAP_WAIT]
    position.audit_gaps = [g for g in position.audit_gaps if now - g[2] < GAP_WAIT]


def _catch_up(conn: Connection, snapshot: Snapshot, now: float) -> Snapshot | None:
    """A new snapshot with what was committed since, or None when nothing was."""
    _forget_old_gaps(snapshot.position, now)
    _still_valid, new_versions, events = _read_since(conn, snapshot.position)
    return _caught_up(conn, snapshot, new_versions, events, now)


def _caught_up(conn: Connection, snapshot: Snapshot, new_versions: list, events: list, now: float) -> Snapshot | None:
    """A new snapshot with these versions and events read since, or None when they change nothing."""
    position = snapshot.position
    firm_events = [e for e in events if e.action in FIRM_ACTIONS]
    catalog_changed = any(e.action in CATALOG_ACTIONS for e in events)
    if not new_versions and not firm_events and not catalog_changed:
        if events:  # other events: only move the audit position on
            _advance(position, "audit", [e.id for e in events], now)
        return None

    vocab = snapshot.vocab.copy()
    versions, firms = snapshot.versions, snapshot.firms
    moved = replace(position)
    changed = {e.firm_id for e in firm_events} | {r.firm_id for r in new_versions}
    # Which firms differ from the old snapshot; None: every firm may (a bulk change of firms,
    # or dropped rows moving every position).
    touched = None if None in changed else frozenset(changed)
    # A firm's details show in every result naming it, whatever the fee type.
    fee_types: set | None = None if firm_events or catalog_changed else set()
    if new_versions:
        items = sorted({r.item_id for r in new_versions})
        rows = []
        for start in range(0, len(items), _CHUNK):
            chunk = items[start:start + _CHUNK]
            rows += conn.execute(select(*_COLUMNS).where(_V.kind == "publish", _V.item_id.in_(chunk))).all()
        added = Versions.from_rows(rows, vocab)
        if fee_types is not None:  # the items' every version: their old fee type too
            fee_types |= {vocab.fee_type.texts[c] for c in np.unique(added.fee_type)}
        rows_before = len(versions)
        versions = versions.extended(np.array(items, dtype=np.int64), added)
        if len(versions) != rows_before + len(added):
            touched = None
        _advance(moved, "version", [r.id for r in new_versions], now)
        moved.version_count += len(new_versions)
        moved.version_hash = conn.scalar(select(_V.hash).where(_V.id == moved.version_id))
    # The firms of new versions are read again too: cheap, and a firm changed without an
    # audited action (a script, a restore) is then current wherever it publishes.
    if None in changed:  # a bulk change of firms
        firms = _read_firms(conn, Firms.empty(), None, vocab)
    elif changed:
        firms_before = firms
        firms = _read_firms(conn, firms, sorted(changed), vocab)
        if fee_types is not None and any(_firm_differs(firms_before, firms, f) for f in changed):
            fee_types = None  # changed without an audited action: it shows on every fee type's pages

    if events:
        _advance(moved, "audit", [e.id for e in events], now)
    generation = snapshot.generation + 1
    snapshot.lineage.record(generation, touched, None if fee_types is None else frozenset(fee_types))
    return Snapshot(versions, firms, vocab, moved, snapshot.lineage, generation)


def _firm_differs(before: Firms, after: Firms, firm_id: int) -> bool:
    """Whether a firm the snapshot knew reads differently now (a newcomer does not count:
    the fee types of its versions are recorded)."""
    if firm_id >= len(before.known) or not before.known[firm_id]:
        return False
    if (before.known[firm_id], before.category[firm_id], before.active[firm_id], before.names_zh[firm_id],
            before.names_en[firm_id]) != (after.known[firm_id], after.category[firm_id], after.active[firm_id],
                                          after.names_zh[firm_id], after.names_en[firm_id]):
        return True
    ports = set(before.serves) | set(after.serves)
    return any(before.serving(p)[firm_id] != after.serving(p)[firm_id] for p in ports)


def _advance(position: Position, table: str, ids: list[int], now: float) -> None:
    last = getattr(position, f"{table}_id")
    gaps = getattr(position, f"{table}_gaps")
    found = np.array(ids, dtype=np.int64)
    kept = []
    for lo, hi, seen in gaps:  # an old gap keeps what is still missing of it
        kept += [[a, b, seen] for a, b, _ in _gaps(found, lo - 1, hi, seen)]
    top = max(ids + [last])
    kept += _gaps(found, last, top, now)
    setattr(position, f"{table}_id", top)
    setattr(position, f"{table}_gaps", kept)


def _read_firms(conn: Connection, firms: Firms, ids: list[int] | None, vocab: Vocabularies) -> Firms:
    """`firms` with the given firm ids (all when None) read again."""
    stmt = select(Firm.id, Firm.category, Firm.status, Firm.name_zh, Firm.name_en)
    port_stmt = select(FirmPort.firm_id, FirmPort.port)
    if ids is None:
        rows = conn.execute(stmt).all()
        ports = conn.execute(port_stmt).all()
    else:
        rows, ports = [], []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            rows += conn.execute(stmt.where(Firm.id.in_(chunk))).all()
            ports += conn.execute(port_stmt.where(FirmPort.firm_id.in_(chunk))).all()
    top = max([r.id for r in rows] + [0]) + 1
    before, firms = firms, firms.grown(top)
    if ids is not None:  # a firm read again serves exactly the ports it lists now
        again = np.array([i for i in ids if i < len(firms.known)], dtype=np.int64)
        for port_served in firms.serves.values():
            port_served[again] = False
    for r in rows:
        firms.known[r.id] = True
        firms.category[r.id] = vocab.category.code(r.category)
        firms.active[r.id] = r.status == "active"
        firms.names_zh[r.id], firms.names_en[r.id] = r.name_zh, r.name_en or ""
    for firm_id, port in ports:
        served = firms.serves.get(port)
        if served is None:
            served = firms.serves[port] = np.zeros(len(firms.known), dtype=bool)
        served[firm_id] = True
    if ids is not None and len(firms.known) == len(before.known) and all(
            (firms.names_zh[r.id], firms.names_en[r.id]) == (before.names_zh[r.id], before.names_en[r.id])
            for r in rows):
        # Every publish reads its firm again; the name order (~0.1 s of sorting per
        # language, per process, at 166,666 firms) holds while no name changed.
        firms._ranks = dict(before._ranks)
    return firms


def warm_in_background(app, then=None) -> threading.Thread:
    """Build the snapshot in a thread as a server process starts, so the first comparison
    does not wait for it (seconds at a million versions); a request that comes earlier
    waits on the same build rather than starting its own. `then`: called next, in the
    same application context."""

    def build():
        from ..extensions import db

        try:
            with app.app_context():
                current(db.session)
                db.session.remove()
                if then is not None:
                    then()
        except Exception:  # the database may not be migrated yet: the first request builds it
            logging.getLogger(__name__).exception("snapshot warm-up failed")

    thread = threading.Thread(target=build, name="feereg-snapshot-warm-up", daemon=True)
    thread.start()
    return thread
