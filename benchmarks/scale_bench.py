"""National-scale benchmark: a million items on PostgreSQL, both search backends, under load.

    .venv/bin/python benchmarks/scale_bench.py [--items 1000000] [--skip-load] [--keep-db]
        [--database-url URL (a registry already loaded: no new database, no demo load)]
        [--backends whoosh,postgres] [--workers 2] [--clients 50] [--duration 60]
        [--publish-only [--profile FILE]] (with --database-url: only the 20 publishes)

Steps, each timed and printed as it goes, then one table:

1. a fresh PostgreSQL database (feereg_scale_<items>_<pid>, dropped at the end unless
   --keep-db), migrated;
2. `feereg demo --items N` into it (the generator's COPY path; items/s), with the search
   backend set to null so the load's after-commit hook does not build an index untimed —
   the anomaly scan that follows every bulk load is timed with it, separately;
3. for each backend, `feereg reindex` (timed);
4. for each backend, in this process as the application would: search latency over
   benchmarks/search_bench.py's fixed query set — through the backend alone and through
   the search service (parsing, the page's rows, highlighting) — p50/p95; comparisons
   and quotes (search_bench's sets, asked as the pages ask) p95; and the median of 20
   publishes, each an edit and a publish committed with the index update (Whoosh after
   the commit, PostgreSQL inside it);
5. for each backend, a load run: benchmarks/load.py against gunicorn on 127.0.0.1
   (mixed reads and publishes; requests/s, p99, errors) — skipped with --skip-load.

Targets on a 2-core machine: search p95 <= 50 ms, compare p95 <= 100 ms, publish <= 100 ms,
0 errors in the load run. Other work on the machine distorts the figures: the load
average is printed at the start and the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import load  # noqa: E402
from search_bench import build_queries, compare_requests, percentile, quote_requests, timed  # noqa: E402

FEEREG = str(ROOT / ".venv" / "bin" / "feereg")
TARGETS = {"search p95 (service)": 50.0, "compare p95": 100.0, "publish median": 100.0, "load errors": 0}
PUBLISHES = 20


def load_average() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one}, {five}, {fifteen} ({os.cpu_count()} cores)"


def run_cli(args: list[str], env: dict[str, str], label: str) -> tuple[float, str]:
    """A feereg command, its progress shown as it runs; its time and its standard output."""
    started = time.perf_counter()
    done = subprocess.run([FEEREG, *args], env=env, cwd=str(ROOT), stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    for line in done.stdout.splitlines():
        print(f"  | {line}")
    if done.returncode:
        raise RuntimeError(f"{label}: `feereg {' '.join(args)}` failed (exit {done.returncode})")
    return seconds, done.stdout


# --- the database ---------------------------------------------------------------------------------

def create_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    from feereg.config import normalise_database_url

    engine = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    from feereg.config import normalise_database_url

    engine = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    engine.dispose()


# --- measurements in process ------------------------------------------------------------------------

def measure_backend(database_url: str, backend: str, search_dir: Path, n_queries: int, seed: int) -> dict:
    """Search, compare, quote and publish latencies with `backend` as the application's."""
    from feereg import create_app
    from feereg.charts import MAX_DOTS
    from feereg.extensions import db
    from feereg.search import get_backend
    from feereg.search.query import QueryError, parse
    from feereg.services.compare import compare_fee_type, find_fee_type
    from feereg.services.quote import quote_shipment
    from feereg.services.search import search_fees
    from feereg.views.public_compare import QUOTE_FIRMS_ITEMISED, QUOTE_FIRMS_SHOWN, ROWS_PER_PAGE

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SEARCH_BACKEND": backend,
                      "SEARCH_DIR": str(search_dir), "SECRET_KEY": "scale-bench"})
    figures: dict = {}
    with app.app_context():
        session = db.session
        engine = get_backend()
        queries = build_queries(session, n_queries, seed)
        session.rollback()

        def via_backend(q):
            try:
                parsed = parse(q)
            except QueryError:
                return 0
            return engine.search(parsed, {}, "relevance", 1, 20).total

        def via_service(q):
            result = search_fees(session, q, {}, "relevance", 1, 20)
            session.rollback()
            return result.total

        started = time.perf_counter()
        via_backend(queries[0])
        figures["first search s"] = time.perf_counter() - started
        via_service(queries[0])
        times, found = timed(via_backend, queries)
        figures["search p50 (backend)"], figures["search p95 (backend)"] = percentile(times, 50), percentile(times, 95)
        times, found = timed(via_service, queries)
        figures["search p50 (service)"], figures["search p95 (service)"] = percentile(times, 50), percentile(times, 95)
        figures["queries"] = f"{found}/{len(queries)} found"

        def compare(request):  # as the compare page asks: a page of rows and the chart's sample
            args = dict(request)
            fee_type = find_fee_type(session, args.pop("fee_type"))
            result = compare_fee_type(session, fee_type, **args, per_page=ROWS_PER_PAGE, chart_dots=MAX_DOTS)
            session.rollback()
            return result.total if result else 0

        def quote(shipment):  # as the quote page asks: the first firms of each kind, a few itemised
            result = quote_shipment(session, shipment, per_category=QUOTE_FIRMS_SHOWN, itemised=QUOTE_FIRMS_ITEMISED)
            session.rollback()
            return len(result.quotes)

        compares, quotes = compare_requests(), quote_requests()
        started = time.perf_counter()
        compare(compares[0])  # the first comparison builds the snapshot (as a worker does at start)
        figures["snapshot s"] = time.perf_counter() - started
        quote(quotes[0])
        times, _ = timed(compare, compares)
        figures["compare p50"], figures["compare p95"] = percentile(times, 50), percentile(times, 95)
        times, _ = timed(quote, quotes)
        figures["quote p50"], figures["quote p95"] = percentile(times, 50), percentile(times, 95)

        figures["publish median"], figures["publish max"] = _publishes(session)
        db.session.remove()
        db.engine.dispose()
    return figures


def measure_publishes(database_url: str, backend: str, search_dir: Path, profile: Path | None = None) -> dict:
    """Only the publish measurement (--publish-only), optionally under cProfile: the
    profile of the 20 publishes is written to `profile` and its top entries printed."""
    from feereg import create_app
    from feereg.extensions import db
    from feereg.services import snapshot

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SEARCH_BACKEND": backend,
                      "SEARCH_DIR": str(search_dir), "SECRET_KEY": "scale-bench"})
    figures: dict = {}
    with app.app_context():
        started = time.perf_counter()
        snapshot.current(db.session)  # as a worker does at start (the checks may read it)
        figures["snapshot s"] = time.perf_counter() - started
        db.session.rollback()
        profiler = None
        if profile is not None:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        figures["publish median"], figures["publish max"] = _publishes(db.session)
        if profiler is not None:
            import pstats

            profiler.disable()
            profiler.dump_stats(str(profile))
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        db.session.remove()
        db.engine.dispose()
    return figures


def _publishes(session) -> tuple[float, float]:
    """Edit an item and publish it, committed with its index update: PUBLISHES of them,
    each of another firm, spread over the registry."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from feereg.models import FeeItem, User
    from feereg.services import registry

    total = session.scalar(select(func.count()).select_from(FeeItem))
    step = max(1, total // (PUBLISHES * 3))
    ids = session.scalars(select(func.min(FeeItem.id)).where(FeeItem.status == "published", FeeItem.id % step == 0)
                          .group_by(FeeItem.firm_id).order_by(func.min(FeeItem.id)).limit(PUBLISHES)).all()
    session.rollback()
    operator = User(id=None, email="scale-bench@localhost", role="admin", password_hash="!")
    effective = registry.today() + timedelta(days=40)
    times = []
    for item_id in ids:
        started = time.perf_counter()
        item = session.get(FeeItem, item_id)
        values = {**item.published_values(), "amount": item.amount + 1}
        registry.update_draft(session, item, values, operator, item.lock_version)
        registry.publish_item(session, item, operator, effective, "scale benchmark")
        session.commit()  # the after-commit hooks (Whoosh's index update) run in here
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


# --- the whole run ---------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--firms", type=int, default=None, help="default: items/6 (as feereg demo)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--skip-load", action="store_true", help="no load runs (benchmarks/load.py)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (its URL is printed)")
    parser.add_argument("--database-url", default=None,
                        help="measure an already loaded registry instead of creating and loading one")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--backends", default="whoosh,postgres")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="search indexes go in a new directory here (default: the temp directory)")
    parser.add_argument("--index-dir", type=Path, default=None,
                        help="the search indexes' directory of an earlier run (with --database-url)")
    parser.add_argument("--no-reindex", action="store_true",
                        help="measure the indexes as they are (with --database-url and --index-dir)")
    parser.add_argument("--publish-only", action="store_true",
                        help="measure only the publishes (with --database-url): no searches, comparisons, load")
    parser.add_argument("--profile", type=Path, default=None,
                        help="with --publish-only: cProfile the publishes into this file (per backend suffix)")
    parser.add_argument("--queries", type=int, default=240)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if args.no_reindex and not (args.database_url and args.index_dir):
        parser.error("--no-reindex measures an earlier run's registry and indexes: give --database-url and --index-dir")
    if args.publish_only and not args.database_url:
        parser.error("--publish-only measures a loaded registry: give --database-url")

    print(f"scale benchmark: {args.items:,} items; at start {load_average()}")
    workdir = args.index_dir or Path(tempfile.mkdtemp(prefix=f"feereg-scale-{args.items}-", dir=args.workdir))
    print(f"search indexes in {workdir}")
    name = None
    url = args.database_url
    results: dict[str, dict] = {b: {} for b in backends}
    notes: list[str] = []
    try:
        if url is None:
            name = f"feereg_scale_{args.items}_{os.getpid()}"
            url = create_database(args.pg_admin_url, name)
            print(f"database {url}")
        env = {**os.environ, "FEEREG_DATABASE_URL": url, "FEEREG_SEARCH_BACKEND": "null",
               "FEEREG_BULK_DIR": str(workdir / "bulk"), "FEEREG_PDF_CACHE_DIR": str(workdir / "pdf")}
        if args.database_url is None:
            run_cli(["db", "upgrade"], env, "migrate")
            firms = args.firms or max(679, args.items // 6)
            seconds, output = run_cli(["demo", "--items", str(args.items), "--firms", str(firms),
                                       "--seed", str(args.seed)], env, "demo load")
            loaded = _demo_seconds(output)
            print(f"demo load: {loaded:.1f} s ({args.items / loaded:,.0f} items/s); with the anomaly scan "
                  f"after commit and start-up {seconds:.1f} s")
            for b in backends:
                results[b]["demo load s"] = loaded
                results[b]["demo + scan s"] = seconds
        for backend in backends:
            benv = {**env, "FEEREG_SEARCH_BACKEND": backend, "FEEREG_SEARCH_DIR": str(workdir / f"search-{backend}")}
            if args.no_reindex:
                print(f"{backend}: index as it is in {workdir} (--no-reindex)")
            try:
                seconds, _ = (0.0, "") if args.no_reindex else run_cli(["reindex"], benv, f"reindex ({backend})")
            except RuntimeError as exc:
                notes.append(f"{backend}: {exc}; not measured")
                print(f"{backend}: {exc}")
                results[backend] = {}
                continue
            if not args.no_reindex:
                print(f"{backend}: index built in {seconds:.1f} s")
                results[backend]["index build s"] = seconds
            try:
                if args.publish_only:
                    profile = args.profile and args.profile.with_name(f"{args.profile.name}.{backend}")
                    figures = measure_publishes(url, backend, workdir / f"search-{backend}", profile)
                else:
                    figures = measure_backend(url, backend, workdir / f"search-{backend}", args.queries, args.seed)
            except Exception as exc:  # noqa: BLE001 - one backend's failure is a note, the other still runs
                notes.append(f"{backend}: measuring failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
                print(f"{backend}: measuring failed: {exc}")
                continue
            results[backend].update(figures)
            print(f"{backend}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in figures.items()))
            if not args.skip_load and not args.publish_only:
                os.environ["FEEREG_SEARCH_BACKEND"] = backend
                os.environ["FEEREG_SEARCH_DIR"] = str(workdir / f"search-{backend}")
                os.environ["FEEREG_BULK_DIR"] = str(workdir / "bulk")
                try:
                    summary, _ = load.run_load(load.parse_args([
                        "--database-url", url, "--workers", str(args.workers), "--clients", str(args.clients),
                        "--duration", str(args.duration), "--max-requests", str(args.max_requests),
                        "--queries", str(args.queries), "--seed", str(args.seed)]))
                except SystemExit as exc:  # the load run refused or failed: say so in the table
                    reason = str(exc.code).splitlines()[0][:300]
                    notes.append(f"{backend}: load run failed: {reason}")
                    results[backend]["load errors"] = "failed"
                    continue
                results[backend].update({"load req/s": summary.rps, "load p50": summary.p50, "load p99": summary.p99,
                                         "load errors": summary.errors, "load client CPU %": summary.client_cpu * 100})
    finally:
        if name and not args.keep_db:
            drop_database(args.pg_admin_url, name)
            print(f"database {name} dropped")
        elif name:
            print(f"database kept: {url}")
    print_table(results, args, notes)
    return 0


def _demo_seconds(output: str) -> float:
    # "demo: ... planted irregularities in 123.4 s (8,100 items/s); ..."
    for line in output.splitlines():
        if line.startswith("demo:") and " in " in line:
            return float(line.split(" in ", 1)[1].split(" s", 1)[0])
    raise RuntimeError("feereg demo did not say how long the load took")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(results: dict[str, dict], args, notes: list[str]) -> None:
    backends = list(results)
    rows = []
    for backend in backends:
        for key in results[backend]:
            if key not in rows:
                rows.append(key)
    print(f"\n== {args.items:,} items on PostgreSQL; at the end {load_average()}")
    print(f"{'':<24}" + "".join(f"{b:>14}" for b in backends) + f"{'target':>10}")
    for key in rows:
        target = TARGETS.get(key)
        cells = "".join(f"{_fmt(results[b].get(key, '—')):>14}" for b in backends)
        mark = ""
        if target is not None:
            missed = [b for b in backends if isinstance(results[b].get(key), (int, float))
                      and results[b][key] > target]
            mark = f"{'<= ' + _fmt(target):>10}" + (f"  missed: {', '.join(missed)}" if missed else "")
        print(f"{key:<24}{cells}{mark}")
    print("(latencies in ms unless marked s; publish = edit, publish, commit with the index update)")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    sys.exit(main())
