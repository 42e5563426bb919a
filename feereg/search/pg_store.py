"""The PostgreSQL backend's tables (migration 0007, schema `search`): writing, and reading
them into the in-memory columns every process answers from.

Writes run on the caller's connection, so a publish updates its items inside its own
transaction; they take a shared advisory lock and a rebuild an exclusive one, so a
rebuild never misses a publish that commits while it reads the registry.

Each process keeps the span table as numpy columns (feereg.search.columns, the same code
as the Whoosh backend's store) and the firm names as an inverted index (pg_firms.py), and
follows both through search.change. Rows of that
log carry their transaction's id: a PostgreSQL sequence hands out numbers in the order
rows are written, not committed, so "changes after number N" could skip a change that
committed late. Instead a reader remembers the oldest transaction still running when it
last read (its snapshot's xmin): every change committed since was written by that
transaction or a younger one, so its id is no lower, and reading the rows from that id
on, less those already applied, misses nothing (pg_current_xact_id() gives the top-level
id even inside a savepoint).
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Iterable

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import pg_firms, pg_tokens
from .base import FACETS, Hit, SearchUnavailable
from .columns import _GROUP_COLUMNS, Columns, Groups
from .documents import KIND_WEIGHTS, ItemRow, RowBuilder, Text, every_text, firm_texts, item_rows
from .query import Term

#: pg_advisory_xact_lock key: item writes share it, a rebuild holds it alone.
LOCK_KEY = 0x0FEE5EA4C4
#: Change log rows kept; trimmed every CHANGE_TRIM_EVERY changes.
CHANGE_LOG_KEEP = 50_000
CHANGE_TRIM_EVERY = 1_000
#: Text kinds whose ref is a number (a text's key, a firm id).
NUMERIC_KINDS = ("n", "c", "f")

_SPAN_COLUMNS = ("item_id", "valid_from", "valid_until", "version_id", "firm_id", "fee_type", "name_key",
                 "content_key", "category", "currency", "pricing_basis", "amount_cents", "cny_cents", "ports")
#: What the columns are built from, in columns.Columns.from_rows' order.
_COLUMNS_SELECT = ("SELECT item_id, version_id, firm_id, to_char(valid_from, 'YYYY-MM-DD'), "
                   "to_char(valid_until, 'YYYY-MM-DD'), cny_cents, " + ", ".join(_GROUP_COLUMNS)
                   + " FROM search.span")
_LIVE = "valid_from <= :today AND (valid_until IS NULL OR valid_until > :today)"


# --- state ---------------------------------------------------------------------------

#: The backend's tables in the `search` schema (migration 0007).
TABLES = ("meta", "text", "span", "change")


def schema_exists(conn: Connection) -> bool:
    return conn.execute(text("SELECT to_regclass('search.meta') IS NOT NULL")).scalar_one()


def build_token(conn: Connection) -> str | None:
    """The current build's token; None while the tables were never built."""
    return conn.execute(text("SELECT value FROM search.meta WHERE key = 'build'")).scalar()


# --- writing ---------------------------------------------------------------------------

def _span_values(row: ItemRow) -> tuple:
    return (row.item_id, row.valid_from, row.valid_until, row.version_id, row.firm_id, row.fee_type,
            row.name_key, row.content_key, row.category, row.currency, row.pricing_basis, row.amount_cents,
            row.cny_cents, row.ports)


def _text_values(t: Text) -> tuple:
    from .analysis import normalise

    tokens, verify = pg_tokens.tsvector(t.text, t.pinyin)
    return t.kind, t.ref, int(t.ref) if t.kind in NUMERIC_KINDS else None, normalise(t.text), tokens, verify


def replace_items(conn: Connection, item_ids: list[int], rates_config, today: date) -> int:
    """Bring these items' spans and texts up to date from the registry, on the caller's
    connection and in its transaction; returns the number of spans written."""
    item_ids = sorted(set(item_ids))
    if not item_ids:
        return 0
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": LOCK_KEY})
    written = 0
    for start in range(0, len(item_ids), _ITEMS_PER_ROUND):
        written += _replace_round(conn, item_ids[start:start + _ITEMS_PER_ROUND], rates_config, today)
    return written


#: Items read and written per round: an import of 50,000 rows stays within a statement's
#: bound parameters (item_rows lists the ids) and memory.
_ITEMS_PER_ROUND = 5_000


def _replace_round(conn: Connection, item_ids: list[int], rates_config, today: date) -> int:
    firm_ids = conn.execute(text("SELECT DISTINCT firm_id FROM fee_item WHERE id = ANY(:ids)"),
                            {"ids": item_ids}).scalars().all()
    builder = RowBuilder(conn, rates_config, today, firm_ids=firm_ids)
    rows = [row for batch in item_rows(conn, builder, item_ids) for row in batch]
    texts = list(builder.texts.values()) + list(firm_texts(conn, sorted({r.firm_id for r in rows})))
    renamed = _write_texts(conn, texts)
    conn.execute(text("DELETE FROM search.span WHERE item_id = ANY(:ids)"), {"ids": item_ids})
    if rows:
        columns = ", ".join(_SPAN_COLUMNS)
        marks = ", ".join(f":{name}" for name in _SPAN_COLUMNS)
        conn.execute(text(f"INSERT INTO search.span ({columns}) VALUES ({marks})"),
                     [dict(zip(_SPAN_COLUMNS, _span_values(r))) for r in rows])
    _log_changes(conn, item_ids, renamed)
    return len(rows)


def _write_texts(conn: Connection, texts: Iterable[Text]) -> list[int]:
    """Insert new texts and rewrite changed ones (a renamed firm); unchanged texts are left
    alone, their tokens not even computed. Keys in order, so two publishes writing the same
    texts wait for each other instead of deadlocking. Returns the firms named anew."""
    from .analysis import normalise

    wanted = {(t.kind, t.ref): t for t in texts}
    if not wanted:
        return []
    keys = sorted(wanted)
    stored = {(kind, ref): body for kind, ref, body in conn.execute(text(
        "SELECT t.kind, t.ref, t.body FROM search.text t "
        "JOIN unnest(CAST(:kinds AS text[]), CAST(:refs AS text[])) AS k(kind, ref) USING (kind, ref)"),
        {"kinds": [k for k, _ in keys], "refs": [r for _, r in keys]})}
    changed = [wanted[key] for key in keys if stored.get(key) != normalise(wanted[key].text)]
    if changed:
        conn.execute(text(
            "INSERT INTO search.text (kind, ref, num, body, tokens, verify) "
            "VALUES (:kind, :ref, :num, :body, CAST(:tokens AS tsvector), :verify) "
            "ON CONFLICT (kind, ref) DO UPDATE SET num = excluded.num, body = excluded.body, "
            "tokens = excluded.tokens, verify = excluded.verify"),
            [dict(zip(("kind", "ref", "num", "body", "tokens", "verify"), _text_values(t))) for t in changed])
    return [int(t.ref) for t in changed if t.kind == "f"]


def _log_changes(conn: Connection, item_ids: list[int], firm_ids: list[int] = ()) -> None:
    """One change row per item whose spans were replaced, and per firm named anew."""
    first, last = conn.execute(text(
        "WITH added AS (INSERT INTO search.change (item_id, firm_id) "
        "SELECT item, NULL FROM unnest(CAST(:items AS integer[])) AS item UNION ALL "
        "SELECT NULL, firm FROM unnest(CAST(:firms AS integer[])) AS firm RETURNING seq) "
        "SELECT min(seq), max(seq) FROM added"), {"items": list(item_ids), "firms": list(firm_ids)}).one()
    if (first - 1) // CHANGE_TRIM_EVERY != last // CHANGE_TRIM_EVERY:
        # Readers behind the trimmed rows notice the horizon and reload (SearchCache).
        conn.execute(text(
            "WITH gone AS (DELETE FROM search.change WHERE seq <= :upto RETURNING xid) "
            "INSERT INTO search.meta (key, value) SELECT 'trimmed_xid', max(xid)::text FROM gone "
            "HAVING count(*) > 0 "
            "ON CONFLICT (key) DO UPDATE SET value = greatest(search.meta.value::bigint, "
            "excluded.value::bigint)::text"), {"upto": last - CHANGE_LOG_KEEP})


def delete_items(conn: Connection, item_ids: list[int]) -> None:
    item_ids = sorted(set(item_ids))
    if not item_ids:
        return
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": LOCK_KEY})
    conn.execute(text("DELETE FROM search.span WHERE item_id = ANY(:ids)"), {"ids": item_ids})
    _log_changes(conn, item_ids)


def rebuild(conn: Connection, rates_config, today: date, progress: Callable[[int], None] | None = None) -> int:
    """Everything again from the registry, in the caller's transaction: searches read the
    previous build until it commits (DELETE, not TRUNCATE, keeps the old rows visible to
    them), and item writes wait for it."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    for table in ("span", "text", "change"):
        conn.execute(text(f"DELETE FROM search.{table}"))
    raw = conn.connection.driver_connection
    count = 0
    builder = RowBuilder(conn, rates_config, today)
    span_copy = f"COPY search.span ({', '.join(_SPAN_COLUMNS)}) FROM STDIN"
    for batch in item_rows(conn, builder):
        with raw.cursor() as cursor, cursor.copy(span_copy) as copy:
            for row in batch:
                copy.write_row(_span_values(row))
        count += len(batch)
        if progress:
            progress(len(batch))
    texts = every_text(conn, builder)
    with raw.cursor() as cursor, cursor.copy(
            "COPY search.text (kind, ref, num, body, tokens, verify) FROM STDIN") as copy:
        for t in texts.values():
            copy.write_row(_text_values(t))
    conn.execute(text("ANALYZE search.span"))
    conn.execute(text("ANALYZE search.text"))
    conn.execute(text("INSERT INTO search.meta (key, value) VALUES ('build', :token) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), {"token": uuid.uuid4().hex})
    return count


# --- reading ---------------------------------------------------------------------------

#: Every text but the firm names (matched in memory, pg_firms.py), through the partial GIN index.
_MATCH = ("SELECT {n}, false, kind, array_agg(num) FILTER (WHERE num IS NOT NULL), "
          "array_agg(ref) FILTER (WHERE num IS NULL), NULL::text[]{extra} FROM search.text "
          "WHERE tokens @@ CAST(:q{n} AS tsquery) AND kind <> 'f' {also} GROUP BY kind")
#: Texts whose positions a tsvector could not hold (pg_tokens.py), for a term with phrases:
#: candidates by their pairs in any order, each checked on its body.
_MATCH_CHECKED = ("SELECT {n}, true, kind, array_agg(num), array_agg(ref), array_agg(body){extra} FROM search.text "
                  "WHERE verify AND kind <> 'f' AND tokens @@ CAST(:l{n} AS tsquery) GROUP BY kind")


def _match_sql(terms: list[Term], extra: str = "") -> tuple[list[str], dict]:
    """SELECTs of (term number, checked, kind, numeric refs, code refs, bodies to check),
    followed by the `extra` columns."""
    parts, params = [], {}
    for n, term in enumerate(terms):
        exact, loose = pg_tokens.term_queries(term)
        params[f"q{n}"] = exact
        # A term without phrases needs no positions: every text answers it from its tsvector.
        parts.append(_MATCH.format(n=n, extra=extra, also="" if loose is None else "AND NOT verify"))
        if loose is not None:
            params[f"l{n}"] = loose
            parts.append(_MATCH_CHECKED.format(n=n, extra=extra))
    return parts, params


def _collect(terms: list[Term], rows) -> list[dict[str, list]]:
    out: list[dict[str, list]] = [{} for _ in terms]
    for n, checked, kind, nums, refs, bodies in rows:
        values = nums if kind in NUMERIC_KINDS else refs
        if checked:
            values = [v for v, body in zip(values, bodies) if pg_tokens.holds(body, terms[n])]
        out[n].setdefault(kind, []).extend(values)
    return out


@dataclass(frozen=True)
class _Position:
    """Columns and how far along the change log they are."""

    columns: Columns
    firms: pg_firms.FirmNames
    #: The xmin of the snapshot they were read in: changes from this transaction id on may be new.
    horizon: int
    #: Change rows from the horizon on that the columns already hold.
    applied: frozenset = field(default_factory=frozenset)


_POSITION = ("SELECT -1, false, (SELECT value FROM search.meta WHERE key = 'build'), "
             "ARRAY[pg_snapshot_xmin(pg_current_snapshot())::text::bigint, "
             "(SELECT value::bigint FROM search.meta WHERE key = 'trimmed_xid')], "
             "NULL::text[], NULL::text[], c.seqs, c.items, c.firms, c.xids "
             "FROM (SELECT array_agg(seq) AS seqs, array_agg(item_id) AS items, array_agg(firm_id) AS firms, "
             "array_agg(xid) AS xids FROM search.change WHERE xid >= :horizon) AS c")
_NO_CHANGES = ", NULL::bigint[], NULL::integer[], NULL::integer[], NULL::bigint[]"


class SearchCache:
    """The span table as columns and the firm names as an index, brought up to date by each
    search.

    A search asks one statement: the build, the snapshot's xmin and the change rows from the
    horizon on, and every term's matching texts (so they agree with one another). Items and
    firm names changed since are then read again: rows newer than that snapshot only mean
    one read twice, never one missed. A new build, or a change log trimmed past the horizon,
    loads everything in one REPEATABLE READ transaction."""

    def __init__(self):
        self._position: _Position | None = None
        self._lock = threading.Lock()
        #: One thread loads everything; the others wait for its result rather than load too.
        self._loading = threading.Lock()

    def current(self, conn: Connection) -> Columns:
        return self.current_and_matches(conn, [])[0]

    def current_and_matches(self, conn: Connection, terms: list[Term]) -> tuple[Columns, list[dict[str, list]]]:
        """The columns, and per term the refs of the texts holding all its pieces, by kind
        ("n": text keys, "f": firm ids as a read-only array, "t": fee type codes, ...)."""
        position = self._position
        horizon = position.horizon if position is not None else -1
        parts, params = _match_sql(terms, extra=_NO_CHANGES)
        rows = conn.execute(text(" UNION ALL ".join([_POSITION, *parts])),
                            {**params, "horizon": horizon}).all()
        head = next(r for r in rows if r[0] == -1)
        matches = _collect(terms, (r[:6] for r in rows if r[0] != -1))
        build, (xmin, trimmed) = head[2], head[3]
        if build is None:
            raise SearchUnavailable("the search tables were never built: run `feereg reindex`")
        if position is None or position.columns.build != build or (trimmed is not None and trimmed >= horizon):
            with self._loading:
                loaded = self._position
                if loaded is not None and loaded is not position and loaded.columns.build == build:
                    position = loaded  # another thread loaded it meanwhile; the next search catches up
                else:
                    position = _load(conn.engine)
        else:
            seqs, items, firms, xids = head[6:10]
            position = _caught_up(conn, position, xmin, list(zip(seqs or (), items or (), firms or (), xids or ())))
        with self._lock:
            current = self._position
            if (current is None or current.columns.build != position.columns.build
                    or current.horizon <= position.horizon):
                self._position = position
        for term, found in zip(terms, matches):
            firms = position.firms.match(term)
            if len(firms):
                found["f"] = firms
        return position.columns, matches


def _caught_up(conn: Connection, position: _Position, xmin: int, changes: list[tuple]) -> _Position:
    """`position` with the change rows (seq, item, firm, xid) it has not applied yet."""
    new = [(item, firm) for seq, item, firm, _ in changes if seq not in position.applied]
    applied = frozenset(seq for seq, _, _, xid in changes if xid >= xmin)
    columns, firms = position.columns, position.firms
    items = sorted({item for item, _ in new if item is not None})
    if items:
        columns = _apply_changes(conn, columns, items)
    renamed = sorted({firm for _, firm in new if firm is not None})
    if renamed:
        firms = firms.changed(conn.execute(text(
            "SELECT num, body FROM search.text WHERE kind = 'f' AND num = ANY(:ids)"), {"ids": renamed}).all())
    return _Position(columns, firms, xmin, applied)


def _load(engine) -> _Position:
    with engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True) as conn:
        with conn.begin():
            build, xmin = conn.execute(text(
                "SELECT (SELECT value FROM search.meta WHERE key = 'build'), "
                "pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).one()
            if build is None:
                raise SearchUnavailable("the search tables were never built: run `feereg reindex`")
            columns = Columns.from_rows(conn.execute(text(_COLUMNS_SELECT).execution_options(yield_per=20_000)),
                                        Groups(), build, 0)
            firms = pg_firms.FirmNames.build(conn.execute(text(
                "SELECT num, body FROM search.text WHERE kind = 'f'").execution_options(yield_per=20_000)))
            applied = frozenset(conn.execute(text("SELECT seq FROM search.change WHERE xid >= :h"),
                                             {"h": xmin}).scalars())
    return _Position(columns, firms, xmin, applied)


def _apply_changes(conn: Connection, columns: Columns, item_ids: list[int]) -> Columns:
    ids = np.array(item_ids, dtype=np.int64)
    dead = np.isin(columns.item_id, ids)
    rows = conn.execute(text(_COLUMNS_SELECT + " WHERE item_id = ANY(:ids)"), {"ids": item_ids}).all()
    # Groups only grow: the snapshot's group numbers stay valid for its rows.
    groups = Groups()
    groups.ids, groups.rows = dict(columns.groups.ids), list(columns.groups.rows)
    return Columns.from_rows(rows, groups, columns.build, 0, base=columns, dead=dead)


def live_item_ids(conn: Connection, today: date) -> set[int]:
    return set(conn.execute(text(f"SELECT DISTINCT item_id FROM search.span WHERE {_LIVE}"),
                            {"today": today}).scalars())


# --- the same answer in SQL ---------------------------------------------------------------

_KIND_TESTS = {
    "n": "name_key = ANY(CAST(:{p} AS bigint[]))",
    "c": "content_key = ANY(CAST(:{p} AS bigint[]))",
    "f": "firm_id = ANY(CAST(:{p} AS integer[]))",
    "t": "fee_type = ANY(CAST(:{p} AS text[]))",
    "g": "category = ANY(CAST(:{p} AS text[]))",
    "p": "string_to_array(ports, ';') && CAST(:{p} AS text[])",
}
_FILTER_TESTS = {"category": "category = :f_category", "fee_type": "fee_type = :f_fee_type",
                 "currency": "currency = :f_currency", "pricing_basis": "pricing_basis = :f_pricing_basis",
                 "port": ":f_port = ANY(string_to_array(ports, ';'))"}
_ORDER = {"relevance": "score DESC, cny_cents, item_id", "amount": "cny_cents, item_id",
          "amount_desc": "cny_cents DESC, item_id"}


def as_list(refs) -> list:
    """A term's refs as a plain list (firm ids come as a read-only array)."""
    return refs.tolist() if isinstance(refs, np.ndarray) else list(refs)


def search_sql(conn: Connection, matches: list[dict[str, list]], filters: dict[str, str], sort: str, page: int,
               per_page: int, today: date) -> tuple[list[Hit], int, dict]:
    """What the columns answer, in SQL over the span table: the reference the columns are
    tested against, and the design the benchmark measured and set aside (module docstring
    of pg_backend)."""
    params: dict = {"today": today}
    where = [_LIVE]
    score_parts = []
    for number, by_kind in enumerate(matches):
        tests = []
        for kind, refs in sorted(by_kind.items(), key=lambda kv: -KIND_WEIGHTS[kv[0]]):
            if len(refs):
                name = f"t{number}{kind}"
                params[name] = as_list(refs)
                tests.append((_KIND_TESTS[kind].format(p=name), KIND_WEIGHTS[kind]))
        if not tests:
            return [], 0, {facet: [] for facet in FACETS}
        where.append("(" + " OR ".join(test for test, _ in tests) + ")")
        score_parts.append("CASE " + " ".join(f"WHEN {test} THEN {w}" for test, w in tests) + " ELSE 0 END")
    for facet, value in filters.items():
        if value:
            params[f"f_{facet}"] = value
            where.append(_FILTER_TESTS[facet])
    condition = " AND ".join(where)
    score = " + ".join(score_parts) if score_parts else "0"
    counts: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
    total = 0
    for category, fee_type, currency, basis, n in conn.execute(text(
            f"SELECT category, fee_type, currency, pricing_basis, count(*) FROM search.span WHERE {condition} "
            "GROUP BY 1, 2, 3, 4"), params):
        total += n
        for facet, value in (("category", category), ("fee_type", fee_type), ("currency", currency),
                             ("pricing_basis", basis)):
            counts[facet][value] = counts[facet].get(value, 0) + n
    if total:
        for port, n in conn.execute(text(
                "SELECT port, count(*) FROM search.span CROSS JOIN LATERAL "
                "(SELECT DISTINCT port FROM unnest(string_to_array(ports, ';')) AS port) AS p "
                f"WHERE {condition} GROUP BY port"), params):
            counts["port"][port] = n
    facets = {facet: sorted(values.items(), key=lambda kv: (-kv[1], kv[0])) for facet, values in counts.items()}
    params.update(limit=per_page, offset=(page - 1) * per_page)
    rows = conn.execute(text(
        f"SELECT item_id, version_id, {score} AS score FROM search.span WHERE {condition} "
        f"ORDER BY {_ORDER[sort]} LIMIT :limit OFFSET :offset"), params).all()
    return [Hit(item_id, version_id, float(s)) for item_id, version_id, s in rows], total, facets


class PgStore:
    """The span side of one database, with this process's columns of it."""

    def __init__(self, engine):
        self.engine = engine
        self.columns = SearchCache()

    def reading(self):
        """A connection outside any transaction, each statement its own snapshot: a search
        asks two statements (the position, then the terms) and pays no BEGIN or ROLLBACK."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def search(self, matches, filters, sort, page, per_page, today) -> tuple[list[Hit], int, dict]:
        with self.reading() as conn:
            columns = self.columns.current(conn)
        return columns.search(matches, filters, sort, page, per_page, today)

    def search_sql(self, matches, filters, sort, page, per_page, today) -> tuple[list[Hit], int, dict]:
        with self.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            return search_sql(conn, matches, filters, sort, page, per_page, today)  # counts and page agree

    def live_item_ids(self, today: date) -> set[int]:
        with self.reading() as conn:
            return live_item_ids(conn, today)

