"""Search benchmark: build a demo registry, index it, time a fixed set of queries.

    .venv/bin/python benchmarks/search_bench.py --items 3751 [--items 100000 ...] [--queries 240]
        [--backend whoosh|postgres|both] [--database-url URL] [--pg-designs] [--publishes 20]

For each size it prints the demo load time, then for each search backend its index build
time and size, and the latency (median, p95, max) of the first results page with all
facet counts for every query, measured on the same data and the same queries:

* backend — the search backend alone: Whoosh over distinct texts + the SQLite item store,
  or PostgreSQL (tsvector texts + the span table, both read into columns);
* service — the same plus query parsing, loading the page's rows from the registry
  database and highlighting (what the search page does, without HTTP and templates);
* fts5    — (Whoosh runs) the baseline a user could pick instead: SQLite FTS5, trigram
  tokenizer, one document per item, fed the same character pairs (a trigram index cannot
  match a two-character query otherwise), with the same facet and page queries;

then the CPU time of each search — this process's and its PostgreSQL server processes'
(Linux /proc/<pid>/schedstat), which other work on the machine does not inflate as it
inflates latency — and the latency of publishing: an edit and a publish of one item committed, the index
update included (Whoosh after the commit, PostgreSQL inside the transaction), median and
max of --publishes items, and the index update alone.

--pg-designs (PostgreSQL) measures the choices made in feereg/search/pg_backend.py on the
same registry: term matching with the GIN-indexed tsvector of character pairs over every
text, against a pg_trgm GIN index on the texts, and against what the backend does (the
GIN index without the firm names, which each process matches in memory), for one- and
two-character Chinese, longer Chinese and English queries; and facet counting with
GROUP BY over the span table against the in-memory columns, over the first 40 queries.

Then, on the same registry, the latency of a fixed set of comparisons
(feereg.services.compare: common fee types by container size and port) and of
shipment quotes (feereg.services.quote: YANTIAN and SHEKOU, export and import, a few
container mixes and services), and the process's peak memory.

    --database-url postgresql://postgres@127.0.0.1:5432/feereg_bench   the registry on
        PostgreSQL: an empty database gets the demo registry; one that already holds a
        registry is measured as it is (no load; --items is then ignored)

A timed test would be flaky; this prints figures to compare runs on one machine. The
machine's load average is printed with each size: other work distorts the figures.
"""
from __future__ import annotations

import argparse
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feereg import codes, create_app  # noqa: E402
from feereg.extensions import db  # noqa: E402
from feereg.search import analysis  # noqa: E402
from feereg.search.documents import RowBuilder, firm_texts, fixed_texts, item_rows  # noqa: E402
from feereg.search.query import QueryError, parse  # noqa: E402
from feereg.search.whoosh_backend import WhooshBackend  # noqa: E402
from feereg.services.registry import today  # noqa: E402


def build_queries(session, n: int, seed: int) -> list[str]:
    """A fixed, varied mix of what shippers type: catalog names and codes, partial Chinese
    words, English words, ports, firm-name fragments, mixed queries and pinyin."""
    from feereg.demo import vocabulary as vocab
    from feereg.models import FeeType

    rng = random.Random(seed)
    types = list(session.query(FeeType).order_by(FeeType.code))
    queries: list[str] = []
    for ft in types:
        queries.append(ft.code)
        queries.append(ft.name_zh)
        if len(ft.name_zh) >= 3:
            start = rng.randrange(0, len(ft.name_zh) - 1)
            queries.append(ft.name_zh[start:start + 2])
        words = [w for w in ft.name_en.split() if len(w) > 3]
        if words:
            queries.append(rng.choice(words).lower() + ("ing" if rng.random() < 0.2 else ""))
        if ft.alias_list:
            queries.append(rng.choice(ft.alias_list))
    for port in codes.PORTS.values():
        queries += [port.zh, port.en]
    for cat in codes.CATEGORIES.values():
        queries.append(cat.zh)
    for zh, en in rng.sample(list(vocab.DISTRICTS), min(10, len(vocab.DISTRICTS))):
        queries.append(zh)
    for zh, en in rng.sample(list(vocab.TRADE_NAMES), min(20, len(vocab.TRADE_NAMES))):
        queries += [zh, en]
    mixed = [f"{p.zh} {ft.code}" for p in list(codes.SEA_PORTS.values())[:4] for ft in types[:6]]
    queries += mixed
    queries += ["港外堆场 吊箱费", "港外堆场吊箱费", "堆场", "吊箱", "交接单", "cleaning", "THC 盐田",
                "duichang", "mtczf", "matou", "费", "fee", "surcharge 蛇口", "container cleaning",
                "文件费 DOC", "危险品", "reefer", "Yantian THC", "冷藏", "滞箱费 detention"]
    unique = list(dict.fromkeys(q for q in queries if q.strip()))
    rng.shuffle(unique)
    return unique[:n] if len(unique) >= n else unique


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(fn, queries) -> tuple[list[float], int]:
    times, found = [], 0
    for q in queries:
        start = time.perf_counter()
        total = fn(q)
        times.append((time.perf_counter() - start) * 1000)
        found += total > 0
    return times, found


def report(label: str, times: list[float], found: int, n: int) -> None:
    print(f"  {label:<8} median {statistics.median(times):7.1f} ms   p95 {percentile(times, 95):7.1f} ms   "
          f"max {max(times):7.1f} ms   ({found}/{n} queries found something)")


#: The benchmark's PostgreSQL connections carry this name, so their server processes' CPU can be read.
APPLICATION_NAME = "feereg-search-bench"


def _server_pids(engine) -> list[int]:
    """The PostgreSQL processes serving this benchmark's connections."""
    from sqlalchemy import text

    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        return conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                            {"name": APPLICATION_NAME}).scalars().all()


def _cpu_ns(pids: list[int]) -> int:
    """CPU time so far of these processes (Linux schedstat, readable for a local server)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a server elsewhere, or a process gone
            pass
    return total


def cpu_per_search(fn, queries, engine) -> list[float]:
    """CPU milliseconds of each search, this process's and its PostgreSQL servers': what a
    search costs whatever else the machine is doing."""
    fn(queries[0])  # every connection the searches use is open
    pids = _server_pids(engine)
    out = []
    for q in queries:
        server, own = _cpu_ns(pids), time.process_time_ns()
        fn(q)
        own = time.process_time_ns() - own
        out.append((own + _cpu_ns(pids) - server) / 1e6)
    return out


def report_cpu(label: str, cpu: list[float]) -> None:
    print(f"  {label:<8} median {statistics.median(cpu):7.1f} ms   p95 {percentile(cpu, 95):7.1f} ms   "
          f"max {max(cpu):7.1f} ms   CPU (this process + its PostgreSQL servers)")


# --- the FTS5 baseline -------------------------------------------------------------------

def _fts_body(text: str) -> str:
    # Space-delimited pairs and characters: a trigram " 堆场" then stands for the pair.
    return " " + " ".join(analysis.pair_tokens(text)) + " | " + " ".join(analysis.unigram_tokens(text)) + " "


def _fts_match(parsed) -> str:
    terms = []
    for term in parsed.terms:
        pieces = []
        for kind, piece in term.pieces:
            if kind == "cjk":
                tokens = analysis.bigrams(piece) if len(piece) > 1 else [piece]
            else:
                tokens = [analysis.latin_term(piece)]
            pieces.append('" ' + " ".join(tokens) + ' "')
        terms.append("(" + " AND ".join(pieces) + ")")
    return " AND ".join(terms)


def build_fts(directory: Path, engine, rates) -> tuple[sqlite3.Connection, float]:
    """One FTS5 document per live item span, holding all the texts the Whoosh side indexes."""
    started = time.perf_counter()
    path = directory / "fts.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE VIRTUAL TABLE fts USING fts5(body, tokenize='trigram')")
    with engine.connect() as dbc:
        builder = RowBuilder(dbc, rates, today())
        batches = list(item_rows(dbc, builder))
        texts = {t.key: t.text for t in fixed_texts(dbc)}
        texts.update((t.key, t.text) for t in firm_texts(dbc))
        texts.update((k, t.text) for k, t in builder.texts.items())
    store = sqlite3.connect(directory / "search" / "items.sqlite")
    row_of = {(r[0], r[1]): r[2] for r in store.execute("SELECT item_id, valid_from, row FROM item")}
    store.close()
    conn.execute("BEGIN")
    for batch in batches:
        docs = []
        for r in batch:
            parts = [texts.get(f"n:{r.name_key}", ""), texts.get(f"c:{r.content_key}", ""),
                     texts.get(f"f:{r.firm_id}", ""), texts.get(f"t:{r.fee_type}", ""),
                     texts.get(f"g:{r.category}", "")]
            parts += [texts.get(f"p:{p}", "") for p in r.ports.split(";") if p]
            docs.append((row_of[(r.item_id, r.valid_from.isoformat())], "\n".join(_fts_body(p) for p in parts)))
        conn.executemany("INSERT INTO fts (rowid, body) VALUES (?, ?)", docs)
    conn.execute("COMMIT")
    conn.execute("INSERT INTO fts(fts) VALUES ('optimize')")
    conn.execute(f"ATTACH DATABASE '{directory / 'search' / 'items.sqlite'}' AS s")
    return conn, time.perf_counter() - started


def fts_search(conn: sqlite3.Connection, q: str) -> int:
    try:
        parsed = parse(q)
    except QueryError:
        return 0
    params = {"m": _fts_match(parsed), "today": today().isoformat()}
    live = "valid_from <= :today AND (valid_until IS NULL OR valid_until > :today)"
    matched = f"row IN (SELECT rowid FROM fts WHERE fts MATCH :m) AND {live}"
    total = 0
    for *_, n in conn.execute(f"SELECT category, fee_type, currency, pricing_basis, count(*) FROM s.item "
                              f"WHERE {matched} GROUP BY 1, 2, 3, 4", params):
        total += n
    if total:
        conn.execute(f"SELECT port, count(*) FROM s.item_port WHERE row IN (SELECT row FROM s.item WHERE {matched}) "
                     "GROUP BY port", params).fetchall()
    conn.execute(f"SELECT i.item_id FROM fts JOIN s.item i ON i.row = fts.rowid WHERE fts MATCH :m AND {live} "
                 "ORDER BY fts.rank LIMIT 20", params).fetchall()
    return total


# --- compare and quote ------------------------------------------------------------------------

def compare_requests() -> list[dict]:
    """Common fee types, by container size and port (and a category), as the compare page asks."""
    requests = []
    for fee_type in ("THC", "DOC", "LOLO", "EIR"):
        for port in ("YANTIAN", "SHEKOU", None):
            for size in ("20", "40", None):
                requests.append({"fee_type": fee_type, "port": port, "size": size})
    requests += [{"fee_type": "THC", "port": "YANTIAN", "size": "40", "category": "shipping_line"},
                 {"fee_type": "LOLO", "port": "SHEKOU", "size": "20", "category": "offport_yard"},
                 {"fee_type": "DOC", "port": "SHEKOU", "unit": "per_bl"},
                 {"fee_type": "EIR", "port": "YANTIAN", "size": "40HQ"}]
    return requests


def quote_requests() -> list:
    from feereg.services.quote import Shipment

    shipments = []
    mixes = ({"20": 1}, {"40": 2}, {"20": 2, "40HQ": 1}, {"40HQ": 5})
    for port in ("YANTIAN", "SHEKOU"):
        for direction in ("export", "import"):
            for index, containers in enumerate(mixes):
                services = (frozenset(), frozenset({"customs"}), frozenset({"customs", "trucking"}),
                            frozenset({"inspection", "stuffing"}))[index]
                shipments.append(Shipment(port=port, direction=direction, containers=containers,
                                          bills=1 + index % 2, storage_days=(0, 3, 7, 12)[index], services=services))
    return shipments


def time_compare_and_quote(session) -> None:
    from feereg.charts import MAX_DOTS
    from feereg.services.compare import compare_fee_type
    from feereg.services.quote import quote_shipment

    def compare(request):  # what the compare page asks: its first page and the chart's sample
        result = compare_fee_type(session, **request, per_page=100, chart_dots=MAX_DOTS)
        session.rollback()
        return result.total if result else 0

    def quote(shipment):
        result = quote_shipment(session, shipment, itemised=10)  # as the quote page asks
        session.rollback()
        return len(result.quotes)

    compares, quotes = compare_requests(), quote_requests()
    compare(compares[0]), quote(quotes[0])  # warm caches once
    times, found = timed(compare, compares)
    report("compare", times, found, len(compares))
    times, found = timed(quote, quotes)
    report("quote", times, found, len(quotes))


# --- publishing -------------------------------------------------------------------------------

def time_publishes(session, backend, n: int) -> None:
    """Edit and publish n items one by one, each committed with its index update, and the
    index update of one item alone."""
    from sqlalchemy import select

    from feereg.models import FeeItem, Firm, User
    from feereg.services import registry

    actor = User(id=None, email="bench@localhost", role="admin", password_hash="!")
    ids = session.scalars(select(FeeItem.id).join(Firm, Firm.id == FeeItem.firm_id)
                          .where(FeeItem.status == "published", Firm.status == "active")
                          .order_by(FeeItem.id)).all()
    session.rollback()
    chosen = [ids[i * len(ids) // n] for i in range(n)] if len(ids) >= n else ids
    times = []
    for item_id in chosen:
        started = time.perf_counter()
        item = session.get(FeeItem, item_id)
        registry.update_draft(session, item, {"amount": item.amount + 1}, actor, None)
        registry.publish_item(session, item, actor, registry.today(), reason="benchmark")
        session.commit()
        times.append((time.perf_counter() - started) * 1000)
    index_times = []
    for item_id in chosen:
        started = time.perf_counter()
        if backend.name == "postgres":  # what the publishing transaction does, rolled back
            with backend.engine.connect() as conn, conn.begin() as tx:
                backend.index_in_transaction(conn, [item_id])
                tx.rollback()
        else:
            backend.index_items([item_id])
        index_times.append((time.perf_counter() - started) * 1000)
    print(f"  publish  median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms   "
          f"(edit + publish + commit with the index update, {len(times)} items)")
    print(f"  index    median {statistics.median(index_times):7.1f} ms   max {max(index_times):7.1f} ms   "
          f"(one item's index update alone)")


# --- PostgreSQL design measurements ------------------------------------------------------------

#: Term matching probes: one and two CJK characters (most Chinese fee words), longer runs, English.
DESIGN_PROBES = {
    "1 char": ["费", "箱", "港", "场", "柜", "单", "冷", "深"],
    "2 chars": ["堆场", "吊箱", "码头", "深圳", "代理", "海通", "文件", "冷藏"],
    "3-4 chars": ["操作费", "港外堆场", "码头操作", "设备交接", "危险品", "滞箱费"],
    "English": ["handling", "cleaning", "terminal", "shipping", "yantian", "logistics"],
}


def _median_ms(conn, sql: str, params: dict, repeat: int = 3) -> tuple[float, int]:
    from sqlalchemy import text

    times, found = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = len(conn.execute(text(sql), params).all())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), found


#: Facet designs are compared on this many of the queries (GROUP BY at a million items takes seconds each).
DESIGN_FACET_QUERIES = 40


def pg_designs(backend, queries: list[str]) -> None:
    """Term matching: the GIN-indexed tsvector of pairs over every text, against pg_trgm, and
    against what the backend does (the GIN index without the firm names, firm names in
    memory). Facets: GROUP BY over the span table against the in-memory columns."""
    from sqlalchemy import text

    from feereg.search import pg_tokens

    with backend.engine.begin() as conn:
        texts = conn.execute(text("SELECT count(*) FROM search.text")).scalar_one()
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        started = time.perf_counter()
        conn.execute(text("CREATE INDEX IF NOT EXISTS bench_text_trgm ON search.text USING gin (body gin_trgm_ops)"))
        trgm_built = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute(text("CREATE INDEX IF NOT EXISTS bench_text_all ON search.text USING gin (tokens) "
                          "WITH (fastupdate = off)"))
        all_built = time.perf_counter() - started
        conn.execute(text("ANALYZE search.text"))
        sizes = conn.execute(text("SELECT pg_relation_size('search.bench_text_all'), "
                                  "pg_relation_size('search.bench_text_trgm')")).one()
    print(f"  designs  term matching over {texts:,} texts; index sizes: tsvector GIN {sizes[0] / 1e6:.1f} MB "
          f"(built in {all_built:.1f} s), pg_trgm GIN {sizes[1] / 1e6:.1f} MB (built in {trgm_built:.1f} s)")
    try:
        with backend.engine.connect() as conn:
            for label, probes in DESIGN_PROBES.items():
                tsv, trgm, chosen, tsv_found, trgm_found = [], [], [], 0, 0
                for q in probes:
                    exact, _ = pg_tokens.term_queries(parse(q).terms[0])
                    ms, n = _median_ms(conn, "SELECT kind, ref FROM search.text WHERE tokens @@ CAST(:q AS tsquery)",
                                       {"q": exact})
                    tsv.append(ms)
                    tsv_found += n
                    ms, n = _median_ms(conn, "SELECT kind, ref FROM search.text WHERE body LIKE :q",
                                       {"q": f"%{q}%"})
                    trgm.append(ms)
                    trgm_found += n
                    runs = []
                    for _ in range(3):
                        started = time.perf_counter()
                        backend.matches(parse(q))
                        runs.append((time.perf_counter() - started) * 1000)
                    chosen.append(statistics.median(runs))
                print(f"    {label:<9} tsvector GIN median {statistics.median(tsv):6.1f} max {max(tsv):7.1f} ms "
                      f"({tsv_found:,} texts) | pg_trgm LIKE median {statistics.median(trgm):6.1f} max "
                      f"{max(trgm):7.1f} ms ({trgm_found:,}) | GIN + firm names in memory median "
                      f"{statistics.median(chosen):6.1f} max {max(chosen):6.1f} ms")
            plan = conn.execute(text("EXPLAIN SELECT kind, ref FROM search.text WHERE body LIKE '%堆场%'")).scalars().all()
            print(f"    pg_trgm plan for a 2-character LIKE: {plan[0].strip()}")
    finally:
        with backend.engine.begin() as conn:
            conn.execute(text("DROP INDEX IF EXISTS search.bench_text_trgm"))
            conn.execute(text("DROP INDEX IF EXISTS search.bench_text_all"))

    today_ = backend.today()
    parsed = []
    for q in queries[:DESIGN_FACET_QUERIES]:
        try:
            parsed.append(parse(q))
        except QueryError:
            pass
    matches = [backend.matches(p) for p in parsed]
    sql_times, col_times = [], []
    for m in matches:
        started = time.perf_counter()
        backend.store.search_sql(m, {}, "relevance", 1, 20, today_)
        sql_times.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        backend.store.search(m, {}, "relevance", 1, 20, today_)
        col_times.append((time.perf_counter() - started) * 1000)
    print(f"    facets + page over {len(matches)} queries, GROUP BY over search.span: median "
          f"{statistics.median(sql_times):6.1f} ms  p95 {percentile(sql_times, 95):7.1f} ms  max {max(sql_times):7.1f} ms")
    print(f"    facets + page over {len(matches)} queries, in-memory columns:         median "
          f"{statistics.median(col_times):6.1f} ms  p95 {percentile(col_times, 95):7.1f} ms  max {max(col_times):7.1f} ms")


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def load_average() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one}, {five}, {fifteen}"


# --- one size ------------------------------------------------------------------------------

def _make_backend(kind: str, app, workdir: Path):
    from feereg.search.pg_backend import PgBackend

    if kind == "postgres":
        return PgBackend(db.engine, app.config["EXCHANGE_RATES"], today)
    return WhooshBackend(workdir / "search", db.engine, app.config["EXCHANGE_RATES"], today)


def _index_size_mb(backend, workdir: Path) -> float:
    from sqlalchemy import text

    if backend.name == "postgres":
        with backend.engine.connect() as conn:
            return float(conn.execute(text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'search' AND c.relkind = 'r'")).scalar_one()) / 1e6
    return sum(p.stat().st_size for p in (workdir / "search").iterdir()) / 1e6


def run(items: int, firms: int | None, seed: int, n_queries: int, keep: Path | None, database_url: str | None,
        backends: list[str], designs: bool, publishes: int, fts: bool = True) -> None:
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from feereg.demo.generator import generate
    from feereg.models import FeeItem
    from feereg.services.search import search_fees

    workdir = Path(tempfile.mkdtemp(prefix=f"feereg-bench-{items}-", dir=keep))
    firms = firms or max(679, items // 6)
    database = database_url or f"sqlite:///{workdir / 'registry.sqlite'}"
    # Loading with the null backend: the bulk-load hook would otherwise rebuild the index
    # once more, untimed; each backend's build is timed explicitly below.
    config = {"SQLALCHEMY_DATABASE_URI": database, "SEARCH_DIR": str(workdir / "search"), "SECRET_KEY": "bench",
              "SEARCH_BACKEND": "null"}
    if database.startswith("postgres"):
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True,
                                               "connect_args": {"application_name": APPLICATION_NAME}}
    app = create_app(config)
    with app.app_context():
        upgrade()
        loaded = db.session.scalar(select(func.count()).select_from(FeeItem))
        db.session.rollback()
        where = "PostgreSQL" if db.engine.dialect.name == "postgresql" else "SQLite"
        if loaded:
            print(f"\n== the registry already in the database: {loaded:,} items, on {where}; {load_average()}")
        else:
            print(f"\n== {items:,} items, {firms:,} firms (seed {seed}) in {workdir}, registry on {where}; "
                  f"{load_average()}")
            started = time.perf_counter()
            generate(db.session, firms=firms, items=items, seed=seed)
            db.session.commit()
            print(f"  demo load          {time.perf_counter() - started:8.1f} s")

        queries = build_queries(db.session, n_queries, seed)
        db.session.rollback()
        print(f"  queries            {len(queries):8}")
        for kind in backends:
            if kind == "postgres" and db.engine.dialect.name != "postgresql":
                print("  postgres backend   skipped: the registry is on SQLite (give --database-url)")
                continue
            print(f" -- {kind} backend")
            backend = _make_backend(kind, app, workdir)
            app.config["SEARCH_BACKEND"] = kind
            app.extensions["feereg.search"] = backend  # the hooks index through this one
            started = time.perf_counter()
            spans = backend.rebuild()
            build = time.perf_counter() - started
            print(f"  index build        {build:8.1f} s   ({spans:,} item spans; {_index_size_mb(backend, workdir):.1f} MB)")
            if kind == "whoosh":
                with backend._index().searcher() as s:
                    print(f"  whoosh documents   {s.doc_count():8,}   (distinct texts)")

            def via_backend(q):
                return backend.search(parse(q), {}, "relevance", 1, 20).total if _parses(q) else 0

            def via_service(q):
                result = search_fees(db.session, q, {}, "relevance", 1, 20)
                db.session.rollback()
                return result.total

            started = time.perf_counter()
            via_backend(queries[0])  # the first search loads the item columns into memory
            print(f"  first search       {time.perf_counter() - started:8.2f} s   (loads the item columns)")
            for fn in (via_backend, via_service):  # warm caches once
                fn(queries[0])
            times, found = timed(via_backend, queries)
            report("backend", times, found, len(queries))
            times, found = timed(via_service, queries)
            report("service", times, found, len(queries))
            report_cpu("cpu", cpu_per_search(via_backend, queries, db.engine))
            report_cpu("cpu svc", cpu_per_search(via_service, queries, db.engine))
            sample = queries[: max(1, len(queries) // 4)]
            times, found = timed(lambda q: backend.search(parse(q), {"port": "YANTIAN"}, "amount", 1, 20).total
                                 if _parses(q) else 0, sample)
            report("filtered", times, found, len(sample))
            time_publishes(db.session, backend, publishes)
            if kind == "whoosh" and fts:
                conn, fts_build = build_fts(workdir, db.engine, app.config["EXCHANGE_RATES"])
                fts_size = (workdir / "fts.sqlite").stat().st_size / 1e6
                print(f"  fts5 build         {fts_build:8.1f} s   ({fts_size:.1f} MB)")
                fts_search(conn, queries[0])
                times, found = timed(lambda q: fts_search(conn, q), queries)
                report("fts5", times, found, len(queries))
                conn.close()
            if kind == "postgres" and designs:
                pg_designs(backend, queries)
            app.extensions["feereg.search"] = None

        time_compare_and_quote(db.session)
        print(f"  peak memory        {peak_memory_mb():8.0f} MB (whole benchmark process); {load_average()}")


def _parses(q: str) -> bool:
    try:
        parse(q)
        return True
    except QueryError:
        return False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, action="append", help="registry size; repeat for several")
    parser.add_argument("--firms", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--database-url", "--pg", dest="database_url", default=None,
                        help="the registry's database: a PostgreSQL database, empty (the demo registry is loaded "
                        "into it) or holding a registry (measured as it is); default: SQLite in the work "
                        "directory. One size per run")
    parser.add_argument("--backend", choices=("whoosh", "postgres", "both"), default="whoosh",
                        help="the search backend(s) to measure; postgres needs --database-url")
    parser.add_argument("--pg-designs", action="store_true",
                        help="also measure tsvector pairs against pg_trgm, and GROUP BY facets against columns")
    parser.add_argument("--publishes", type=int, default=20, help="items published one by one, timed")
    parser.add_argument("--no-fts5", action="store_true", help="skip the SQLite FTS5 baseline")
    args = parser.parse_args(argv)
    sizes = args.items or [3751]
    if args.database_url and len(sizes) > 1:
        parser.error("--database-url takes one --items per run (the database must start empty)")
    backends = ["whoosh", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in backends and not (args.database_url or "").startswith("postgres"):
        parser.error("--backend postgres needs --database-url postgresql://...")
    for items in sizes:
        run(items, args.firms, args.seed, args.queries, args.workdir, args.database_url, backends,
            args.pg_designs, args.publishes, fts=not args.no_fts5)


if __name__ == "__main__":
    main()
