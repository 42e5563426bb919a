"""The item side of the search index: a SQLite file beside the Whoosh texts.

Whoosh answers "which texts match each term"; this store answers everything that
depends on items — which items carry those texts and are in force today, filters,
facet counts, sorting and the page — with indexed SQL. It is derived state like the
Whoosh index (same directory, rebuilt by `feereg reindex`), so it needs no migration
of the registry's schema and works the same whether the registry runs on SQLite or
PostgreSQL.
"""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import uuid
from dataclasses import astuple
from datetime import date
from pathlib import Path

from .analysis import normalise
from .base import FACETS, Hit
from .columns import ColumnCache
from .documents import KIND_WEIGHTS, ItemRow

SCHEMA_VERSION = "2"
#: Changes kept in the log: a process further behind than this reloads the columns.
CHANGE_LOG_KEEP = 50_000
#: Texts a phrase check reads one by one; beyond this many the whole text table is read again.
_READ_ALL_TEXTS = 5_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS item (
    row INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL,
    version_id INTEGER NOT NULL,
    firm_id INTEGER NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    fee_type TEXT NOT NULL,
    name_key INTEGER NOT NULL,
    content_key INTEGER NOT NULL,
    category TEXT NOT NULL,
    currency TEXT NOT NULL,
    pricing_basis TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    cny_cents INTEGER NOT NULL,
    ports TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS item_port (port TEXT NOT NULL, row INTEGER NOT NULL, PRIMARY KEY (port, row))
    WITHOUT ROWID;
-- The items each write replaced, in order: how other processes' in-memory columns catch up.
CREATE TABLE IF NOT EXISTS change (seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER NOT NULL);
-- The indexed texts, normalised: a phrase is checked on them (see WhooshBackend._verified).
CREATE TABLE IF NOT EXISTS text (key TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS ix_item_item ON item (item_id);
CREATE INDEX IF NOT EXISTS ix_item_name ON item (name_key);
CREATE INDEX IF NOT EXISTS ix_item_content ON item (content_key);
CREATE INDEX IF NOT EXISTS ix_item_firm ON item (firm_id);
CREATE INDEX IF NOT EXISTS ix_item_type ON item (fee_type, cny_cents);
CREATE INDEX IF NOT EXISTS ix_item_category ON item (category, cny_cents);
CREATE INDEX IF NOT EXISTS ix_item_cny ON item (cny_cents);
CREATE INDEX IF NOT EXISTS ix_item_port_row ON item_port (row);
"""
#: Item columns that a term of a given text kind is matched against.
_KIND_COLUMNS = {"n": "name_key", "c": "content_key", "f": "firm_id", "t": "fee_type", "g": "category"}
_FILTER_COLUMNS = {"category": "category", "fee_type": "fee_type", "currency": "currency",
                   "pricing_basis": "pricing_basis"}


class PendingItems:
    """Items a failed index write left out, one id a line, kept until a write or a rebuild
    covers them. Every process of the site shares the file, so each change to it holds an
    exclusive lock on it."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> set[int]:
        try:
            with open(self.path, encoding="ascii") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                return {int(line) for line in handle if line.strip().isdigit()}
        except FileNotFoundError:
            return set()

    def add(self, item_ids) -> None:
        if not item_ids:
            return
        with open(self.path, "a", encoding="ascii") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write("".join(f"{int(i)}\n" for i in item_ids))
            handle.flush()
            os.fsync(handle.fileno())

    def discard(self, item_ids) -> None:
        """Forget these (now indexed); ids added meanwhile by others stay."""
        if not item_ids:
            return
        try:
            handle = open(self.path, "r+", encoding="ascii")
        except FileNotFoundError:
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            left = {int(line) for line in handle if line.strip().isdigit()} - set(item_ids)
            handle.seek(0)
            handle.truncate()
            handle.write("".join(f"{i}\n" for i in sorted(left)))
            handle.flush()
            os.fsync(handle.fileno())
            # Left empty rather than removed: a writer waiting for the lock holds this file
            # open and would append to a file no longer there.


class Store:
    FILE = "items.sqlite"

    def __init__(self, directory: Path):
        self.path = Path(directory) / self.FILE
        self.columns = ColumnCache()
        #: key → normalised text, filled as phrases need them; (build, texts version) it holds.
        self._texts: dict[str, str] = {}
        self._texts_version: dict | None = None
        #: Keys read since texts last changed; None: every cached text is current.
        self._fresh: set | None = None
        self._texts_lock = threading.Lock()

    def connect(self, create: bool = False) -> sqlite3.Connection:
        if not create and not self.path.exists():
            raise FileNotFoundError(self.path)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:  # not a database (damaged): the caller reports it
            conn.close()
            raise
        return conn

    # --- writing -----------------------------------------------------------------

    def create(self) -> sqlite3.Connection:
        conn = self.connect(create=True)
        conn.executescript(_SCHEMA)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        # A new token per build: a process holding the old file's columns reloads.
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('build', ?)", (uuid.uuid4().hex,))
        return conn

    @staticmethod
    def finish_bulk(conn: sqlite3.Connection) -> None:
        """Indexes after a bulk load (faster than maintaining them row by row), then statistics
        so the planner can tell a broad match from a narrow one."""
        conn.executescript(_INDEXES)
        conn.execute("ANALYZE")

    @staticmethod
    def insert(conn: sqlite3.Connection, rows: list[ItemRow]) -> None:
        for row in rows:
            values = astuple(row)
            values = values[:3] + (values[3].isoformat(), values[4].isoformat() if values[4] else None) + values[5:]
            cursor = conn.execute("INSERT INTO item (item_id, version_id, firm_id, valid_from, valid_until, "
                                  "fee_type, name_key, content_key, category, currency, pricing_basis, "
                                  "amount_cents, cny_cents, ports) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
            conn.executemany("INSERT OR IGNORE INTO item_port VALUES (?, ?)",
                             [(p, cursor.lastrowid) for p in row.ports.split(";") if p])

    @staticmethod
    def delete_items(conn: sqlite3.Connection, item_ids: list[int]) -> None:
        ids = json.dumps(list(item_ids))
        conn.execute("DELETE FROM item_port WHERE row IN (SELECT row FROM item WHERE item_id IN "
                     "(SELECT value FROM json_each(?)))", (ids,))
        conn.execute("DELETE FROM item WHERE item_id IN (SELECT value FROM json_each(?))", (ids,))

    @staticmethod
    def write_texts(conn: sqlite3.Connection, texts) -> None:
        conn.executemany("INSERT OR REPLACE INTO text VALUES (?, ?)",
                         ((t.key, normalise(t.text)) for t in texts))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('texts', ?)", (uuid.uuid4().hex,))

    def stored_texts(self, keys: list[str]) -> dict[str, str]:
        """The normalised texts the store holds under these keys, read now (not cached)."""
        found: dict[str, str] = {}
        conn = self.connect()
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                found.update(conn.execute(f"SELECT key, body FROM text WHERE key IN ({','.join('?' * len(chunk))})",
                                          chunk))
        finally:
            conn.close()
        return found

    def texts(self, keys: list[str]) -> dict[str, str]:
        """The normalised texts of these keys (those the store has).

        The first call reads every text. After a write changed texts (a firm renamed), a
        cached text is read again before it is used, not the whole table: publishing
        writes texts, and a million items' texts take a second to read."""
        conn = self.connect()
        try:
            conn.execute("BEGIN")
            version = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('build', 'texts')"))
            with self._texts_lock:
                old = self._texts_version or {}
                if version.get("build") != old.get("build"):
                    self._texts, self._fresh = {}, None
                elif version.get("texts") != old.get("texts"):
                    self._fresh = set()
                self._texts_version = version
                cache, fresh = self._texts, self._fresh
            stale = [k for k in keys if k not in cache or (fresh is not None and k not in fresh)]
            if not cache or len(stale) > _READ_ALL_TEXTS:
                # All at once: a common word's texts cost more to look up one by one.
                everything = dict(conn.execute("SELECT key, body FROM text"))
                cache.clear()
                cache.update(everything)
                with self._texts_lock:
                    if self._fresh is fresh:
                        self._fresh = None
            elif stale:
                found = dict(conn.execute("SELECT key, body FROM text WHERE key IN (SELECT value FROM json_each(?))",
                                          (json.dumps(stale),)))
                for key in stale:
                    if key in found:
                        cache[key] = found[key]
                    else:
                        cache.pop(key, None)
                if fresh is not None:
                    fresh.update(stale)
            conn.execute("COMMIT")
        finally:
            conn.close()
        return cache

    def replace_items(self, item_ids: list[int], rows: list[ItemRow], texts=()) -> None:
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            if texts:
                self.write_texts(conn, texts)
            self.delete_items(conn, item_ids)
            self.insert(conn, rows)
            conn.executemany("INSERT INTO change (item_id) VALUES (?)", [(i,) for i in dict.fromkeys(item_ids)])
            conn.execute("DELETE FROM change WHERE seq <= (SELECT max(seq) FROM change) - ?", (CHANGE_LOG_KEEP,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # --- reading -----------------------------------------------------------------

    def live_item_ids(self, today: date) -> set[int]:
        conn = self.connect()
        try:
            return {r[0] for r in conn.execute(f"SELECT DISTINCT item_id FROM item WHERE {_LIVE}",
                                               {"today": today.isoformat()})}
        finally:
            conn.close()

    def search(self, matches: list[dict[str, list]], filters: dict[str, str], sort: str, page: int,
               per_page: int, today: date) -> tuple[list[Hit], int, dict]:
        """`matches`: per query term, the matched text refs by kind ("n", "f", ...). An item is
        found when every term matches one of its texts. Answered from the in-memory columns
        (columns.py), brought up to date with this file first."""
        conn = self.connect()
        try:
            columns = self.columns.current(conn)
        finally:
            conn.close()
        return columns.search(matches, filters, sort, page, per_page, today)

    def search_sql(self, matches: list[dict[str, list]], filters: dict[str, str], sort: str, page: int,
                   per_page: int, today: date) -> tuple[list[Hit], int, dict]:
        """The same answer with SQL over the item table: the reference the columns are tested
        against, and fast enough while few items match."""
        params: dict = {"today": today.isoformat()}
        where = [_LIVE]
        score_parts = []
        for number, by_kind in enumerate(matches):
            ors, cases = [], []
            for kind, refs in sorted(by_kind.items(), key=lambda kv: -KIND_WEIGHTS[kv[0]]):
                if not refs:
                    continue
                name = f"t{number}{kind}"
                params[name] = json.dumps(refs)
                if kind == "p":
                    test = f"row IN (SELECT row FROM item_port WHERE port IN (SELECT value FROM json_each(:{name})))"
                    rows = f"SELECT row FROM item_port WHERE port IN (SELECT value FROM json_each(:{name}))"
                else:
                    test = f"{_KIND_COLUMNS[kind]} IN (SELECT value FROM json_each(:{name}))"
                    rows = f"SELECT row FROM item WHERE {test}"
                ors.append(rows)
                cases.append(f"WHEN {test} THEN {KIND_WEIGHTS[kind]}")
            if not ors:
                return [], 0, {facet: [] for facet in FACETS}
            # A union of index lookups per term: an OR across columns would scan every row.
            where.append("row IN (" + " UNION ".join(ors) + ")")
            score_parts.append("CASE " + " ".join(cases) + " ELSE 0 END")
        for facet, value in filters.items():
            if not value:
                continue
            params[f"f_{facet}"] = value
            if facet == "port":
                where.append(f"row IN (SELECT row FROM item_port WHERE port = :f_{facet})")
            else:
                where.append(f"{_FILTER_COLUMNS[facet]} = :f_{facet}")
        condition = " AND ".join(where)
        score = " + ".join(score_parts) if score_parts else "0"
        order = {
            "relevance": "score DESC, cny_cents, item_id",
            "amount": "cny_cents, item_id",
            "amount_desc": "cny_cents DESC, item_id",
        }[sort]
        conn = self.connect()
        try:
            facets, total = self._facets(conn, condition, params)
            params.update(limit=per_page, offset=(page - 1) * per_page)
            rows = conn.execute(
                f"SELECT item_id, version_id, {score} AS score FROM item WHERE {condition} "
                f"ORDER BY {order} LIMIT :limit OFFSET :offset", params).fetchall()
        finally:
            conn.close()
        return [Hit(item_id, version_id, float(s)) for item_id, version_id, s in rows], total, facets

    @staticmethod
    def _facets(conn, condition: str, params: dict) -> tuple[dict, int]:
        # One grouped pass gives four facets and the total (their cross product is small);
        # ports are many per item and need their own pass.
        counts: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}
        total = 0
        for category, fee_type, currency, basis, n in conn.execute(
                f"SELECT category, fee_type, currency, pricing_basis, count(*) FROM item WHERE {condition} "
                "GROUP BY 1, 2, 3, 4", params):
            total += n
            for facet, value in (("category", category), ("fee_type", fee_type), ("currency", currency),
                                 ("pricing_basis", basis)):
                counts[facet][value] = counts[facet].get(value, 0) + n
        if total:
            for port, n in conn.execute(
                    f"SELECT port, count(*) FROM item_port WHERE row IN (SELECT row FROM item WHERE {condition}) "
                    "GROUP BY port", params):
                counts["port"][port] = n
        ordered = {facet: sorted(values.items(), key=lambda kv: (-kv[1], kv[0])) for facet, values in counts.items()}
        return ordered, total


#: In force today: started, and not yet replaced by a later change.
_LIVE = "valid_from <= :today AND (valid_until IS NULL OR valid_until > :today)"
