"""The PostgreSQL search backend: the index lives in the registry's database.

Chosen with SEARCH_BACKEND = "postgres" (FEEREG_SEARCH_BACKEND); it needs the registry on
PostgreSQL and migration 0007. It answers exactly what the Whoosh backend answers (the
tests run the whole search suite against both and compare them on a random registry),
and differs where it matters for a national deployment:

* a publish updates the index inside its own transaction (search/hooks.py): the change
  and its index entries commit together or not at all, so search can never lose a
  published change, and every application server sees it at once — no index directory
  per machine, no writer lock, nothing to repair after a crash;
* `feereg reindex` rebuilds inside one transaction: searches read the previous build
  until it commits.

How it is laid out (migrations/versions/0007_search_postgres.py, search/pg_store.py):

* search.text holds each distinct text once — fee names, service contents, firm names,
  the catalog's types with their aliases, ports, categories — with the Whoosh backend's
  tokens (feereg.search.analysis: CJK characters, character pairs with positions, stemmed
  English, pinyin) in a tsvector (search/pg_tokens.py). A query term is one tsquery: its
  pieces ANDed, a run of three or more characters as a phrase of pairs. A GIN index
  answers it for every text but the firm names; those — as many as firms, and the words
  searched most often are in nearly all of them — each process keeps as an inverted index
  in memory (search/pg_firms.py), built from the same table.
* search.span holds one row per item span (a version in force over a stretch of time)
  with the facet and sort columns. Each process reads it once into the numpy columns
  the Whoosh backend's store also uses (search/columns.py).
* search.change logs what each write replaced, so every process follows both tables; a
  search is one statement (the log's new rows and every term's texts), then filters,
  facet counts, sorting and the page on the columns.

Why a tsvector of pairs and not pg_trgm: a trigram index cannot serve a one- or
two-character query (most Chinese fee words are two characters: 堆场, 吊箱; PostgreSQL
falls back to reading every text), stems nothing and knows no pinyin; the pairs are the
Whoosh backend's own analysis, so both backends agree by construction. Why firm names in
memory: a term in every firm's name makes PostgreSQL visit every firm's row to read its
id. Why facets on columns rather than GROUP BY: a broad term ("费", a port, a district)
matches a large share of a million spans, and counting them in SQL visits every one; the
columns count groups of spans instead. Measured with benchmarks/search_bench.py
--backend postgres --pg-designs on the demo registry (PostgreSQL 15, 2 cores, the machine
shared with other work — load average about 10 — so the figures are inflated, the
ratios are what matter):

Median / max of one term's matching (the last column includes the statement's read of
the change log; pg_trgm plans a sequential scan for a 2-character LIKE):

                       tsvector GIN, all texts   pg_trgm LIKE       GIN + firm names in memory
  100,000 items (16,853 texts)
  1 character (费, 箱…)      5.4 /    67 ms       102 /  139 ms        4.8 / 14.3 ms
  2 characters (堆场…)       4.8 /    63 ms       129 /  175 ms        5.1 / 10.3 ms
  3-4 characters             0.3 /   3.7 ms       0.2 /    2 ms        3.3 /  5.8 ms
  English words              1.5 /   9.9 ms       5.2 /   17 ms        4.2 /  8.0 ms
  1,000,000 items (166,853 texts)
  1 character               51 /   928 ms      1,062 / 2,421 ms      6.2 / 24.3 ms
  2 characters              33 / 1,627 ms      1,746 / 3,986 ms      9.7 / 35.3 ms
  3-4 characters           0.3 /   4.2 ms       0.2 /  0.3 ms        2.6 /  5.0 ms
  English words             24 /   153 ms        22 /  182 ms        2.4 / 12.1 ms

Facets and the first page over 40 queries: GROUP BY over search.span median 205 ms and
p95 310 ms at 100,000 items, 1,401 and 2,883 ms at a million; the columns 8.5 / 15.7 ms and
18.9 / 79 ms. The whole backend over the 240 queries: p95 16.8 ms at 100,000 items and
69.7 ms at a million (load average 10; it was 226 ms with firm names in the GIN index);
one publish's index update 30 ms median at a million items.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from . import pg_store
from .base import SearchResult, SearchUnavailable
from .query import ParsedQuery

log = logging.getLogger(__name__)


class PgBackend:
    name = "postgres"
    #: Items are indexed by the publishing transaction itself (search/hooks.py), not after it.
    transactional = True

    def __init__(self, engine: Engine, rates: dict, today: Callable[[], date], auto_build_max_items: int = 20_000):
        self.engine = engine
        self.rates = rates
        self.today = today
        #: A registry this small is indexed whole by its first publish when never built.
        self.auto_build_max_items = auto_build_max_items
        self.store = pg_store.PgStore(engine)

    # --- writing -----------------------------------------------------------------

    def index_in_transaction(self, conn: Connection, item_ids: list[int]) -> None:
        """Index these items on `conn` — a publishing session's connection — so they commit
        with the publish. An index never built is left to `feereg reindex` (which reads
        everything, this publish included) unless the registry is small enough to build now."""
        if not pg_store.schema_exists(conn):
            log.error("search tables missing (migration 0007): run `feereg db upgrade` and `feereg reindex`")
            return
        if pg_store.build_token(conn) is None:
            from ..models import FeeItem

            if conn.execute(select(func.count()).select_from(FeeItem)).scalar_one() <= self.auto_build_max_items:
                pg_store.rebuild(conn, self.rates, self.today())
            else:
                log.warning("search tables never built; run `feereg reindex`")
            return
        pg_store.replace_items(conn, item_ids, self.rates, self.today())

    def index_items(self, item_ids: list[int]) -> None:
        with self.engine.begin() as conn:
            self.index_in_transaction(conn, item_ids)

    def remove(self, item_ids: list[int]) -> None:
        with self.engine.begin() as conn:
            pg_store.delete_items(conn, item_ids)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        with self.engine.begin() as conn:
            return pg_store.rebuild(conn, self.rates, self.today(), progress)

    # --- reading -----------------------------------------------------------------

    def built(self) -> bool:
        try:
            with self.engine.connect() as conn:
                return pg_store.schema_exists(conn) and pg_store.build_token(conn) is not None
        except DBAPIError:
            return False

    def matches(self, query: ParsedQuery) -> list[dict[str, list]]:
        """Per term, the refs of the matching texts by kind (as WhooshBackend.matches)."""
        try:
            with self.store.reading() as conn:
                matches = self.store.columns.current_and_matches(conn, query.terms)[1]
        except DBAPIError as exc:
            raise SearchUnavailable(str(exc).splitlines()[0]) from exc
        return [{kind: pg_store.as_list(refs) for kind, refs in by_kind.items()} for by_kind in matches]

    def search(self, query: ParsedQuery, filters: dict, sort: str, page: int, per_page: int) -> SearchResult:
        try:
            with self.store.reading() as conn:
                columns, matches = self.store.columns.current_and_matches(conn, query.terms)
        except DBAPIError as exc:  # tables missing or damaged, database unreachable
            raise SearchUnavailable(str(exc).splitlines()[0]) from exc
        hits, total, facets = columns.search(matches, filters, sort, page, per_page, self.today())
        return SearchResult(hits, total, facets)

    def live_item_ids(self) -> set[int]:
        try:
            return self.store.live_item_ids(self.today())
        except DBAPIError as exc:
            raise SearchUnavailable(str(exc).splitlines()[0]) from exc


def check_database(url: str) -> None:
    """SEARCH_BACKEND = "postgres" needs the registry on PostgreSQL: say so at start."""
    from sqlalchemy.engine import make_url

    dialect = make_url(url).get_backend_name()
    if dialect != "postgresql":
        raise RuntimeError(f"SEARCH_BACKEND 'postgres' keeps the search index in the registry's database, "
                           f"which must be PostgreSQL; FEEREG_DATABASE_URL is a {dialect} database. "
                           f"Use FEEREG_SEARCH_BACKEND=whoosh, or move the registry to PostgreSQL.")

