"""Search benchmark: build a demo registry, index it, time a fixed set of queries.

    .venv/bin/python benchmarks/search_bench.py --items 3751 [--items 100000 ...] [--queries 240]

For each size it prints the demo load time, the search index build time and size,
and the latency (median, p95, max) of the first results page with all facet counts for
every query, measured three ways on the same data and the same queries:

* backend — feereg's search backend (Whoosh over distinct texts + the SQLite item store);
* service — the same plus query parsing, loading the page's rows from the registry
  database and highlighting (what the search page does, without HTTP and templates);
* fts5    — the baseline a user could pick instead: SQLite FTS5, trigram tokenizer, one
  document per item, fed the same character pairs (a trigram index cannot match a
  two-character query otherwise), with the same facet and page queries.

Then, on the same registry, the latency of a fixed set of comparisons
(feereg.services.compare: common fee types by container size and port) and of
shipment quotes (feereg.services.quote: YANTIAN and SHEKOU, export and import, a few
container mixes and services), and the process's peak memory.

    --pg postgresql+psycopg://postgres@127.0.0.1:5432/feereg_bench   registry on PostgreSQL

A timed test would be flaky; this prints figures to compare runs on one machine.
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


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# --- one size ------------------------------------------------------------------------------

def run(items: int, firms: int | None, seed: int, n_queries: int, keep: Path | None, pg: str | None) -> None:
    from flask_migrate import upgrade

    from feereg.demo.generator import generate
    from feereg.services.search import search_fees

    workdir = Path(tempfile.mkdtemp(prefix=f"feereg-bench-{items}-", dir=keep))
    firms = firms or max(679, items // 6)
    database = pg or f"sqlite:///{workdir / 'registry.sqlite'}"
    print(f"\n== {items:,} items, {firms:,} firms (seed {seed}) in {workdir}, registry on "
          f"{'PostgreSQL' if pg else 'SQLite'}")
    # Loading with the null backend: the bulk-load hook would otherwise rebuild the index
    # once more, untimed; the rebuild is timed explicitly below.
    app = create_app({"SQLALCHEMY_DATABASE_URI": database,
                      "SEARCH_DIR": str(workdir / "search"), "SECRET_KEY": "bench", "SEARCH_BACKEND": "null"})
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        generate(db.session, firms=firms, items=items, seed=seed)
        db.session.commit()
        print(f"  demo load          {time.perf_counter() - started:8.1f} s")

        backend = WhooshBackend(workdir / "search", db.engine, app.config["EXCHANGE_RATES"], today)
        app.extensions["feereg.search"] = backend
        started = time.perf_counter()
        spans = backend.rebuild()
        build = time.perf_counter() - started
        size = sum(p.stat().st_size for p in (workdir / "search").iterdir()) / 1e6
        print(f"  index build        {build:8.1f} s   ({spans:,} item spans; {size:.1f} MB on disk)")
        with backend._index().searcher() as s:
            print(f"  whoosh documents   {s.doc_count():8,}   (distinct texts)")

        queries = build_queries(db.session, n_queries, seed)
        print(f"  queries            {len(queries):8}")

        def via_backend(q):
            return backend.search(parse(q), {}, "relevance", 1, 20).total

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
        sample = queries[: max(1, len(queries) // 4)]
        times, found = timed(lambda q: backend.search(parse(q), {"port": "YANTIAN"}, "amount", 1, 20).total
                             if _parses(q) else 0, sample)
        report("filtered", times, found, len(sample))

        conn, fts_build = build_fts(workdir, db.engine, app.config["EXCHANGE_RATES"])
        fts_size = (workdir / "fts.sqlite").stat().st_size / 1e6
        print(f"  fts5 build         {fts_build:8.1f} s   ({fts_size:.1f} MB)")
        fts_search(conn, queries[0])
        times, found = timed(lambda q: fts_search(conn, q), queries)
        report("fts5", times, found, len(queries))
        conn.close()

        time_compare_and_quote(db.session)
        print(f"  peak memory        {peak_memory_mb():8.0f} MB (whole benchmark process)")


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
    parser.add_argument("--pg", default=None, help="an empty PostgreSQL database for the registry "
                        "(default: SQLite in the work directory); one size per run")
    args = parser.parse_args(argv)
    sizes = args.items or [3751]
    if args.pg and len(sizes) > 1:
        parser.error("--pg takes one --items per run (the database must start empty)")
    for items in sizes:
        run(items, args.firms, args.seed, args.queries, args.workdir, args.pg)


if __name__ == "__main__":
    main()
