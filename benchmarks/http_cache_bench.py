"""What a 304 saves: public pages rendered in full, against the same request revalidated.

    .venv/bin/python benchmarks/http_cache_bench.py [--items 3751] [--database URL] [--redis URL] [--repeat 20]

Loads the synthetic demo registry into a temporary SQLite file (or the given database,
which must be empty), then for each page prints the median time of a full answer (200,
rendered) and of a repeat carrying its ETag (304, answered before the view runs), with
the registry's state read from the database, or from Redis with --redis. Times are CPU
time of this process (the machine may be shared), in milliseconds, through Flask's test
client: no network, no gunicorn.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feereg import create_app  # noqa: E402
from feereg.extensions import db  # noqa: E402

PAGES = ["/", "/firms", "/catalog", "/search?q=%E6%96%87%E4%BB%B6%E8%B4%B9", "/compare/THC",
         "/quote/results?port=YANTIAN&direction=export&count_40=1&bills=1", "/feeds/changes.atom"]


def cpu_ms(call) -> float:
    started = time.process_time()
    call()
    return (time.process_time() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=3751)
    parser.add_argument("--database", default=None, help="SQLAlchemy URL of an empty database (default: temporary SQLite)")
    parser.add_argument("--redis", default=None, help="keep the registry state in this Redis (default: the database)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="feereg-http-cache-"))
    config = {"SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": args.database or f"sqlite:///{tmp / 'bench.sqlite'}",
              "SEARCH_DIR": str(tmp / "search"), "PDF_CACHE_DIR": str(tmp / "pdf"), "BULK_DIR": str(tmp / "bulk"),
              "RATELIMIT_ENABLED": False}
    if args.redis:
        config.update(REDIS_URL=args.redis, REDIS_PREFIX=f"feereg-bench-{uuid.uuid4().hex[:8]}")
    app = create_app(config)
    with app.app_context():
        from flask_migrate import upgrade

        from feereg.demo.generator import generate

        upgrade()
        report = generate(db.session, firms=max(679, args.items // 6), items=args.items, seed=20261123)
        db.session.commit()
        db.session.remove()
    print(f"registry: {report.items} items, {report.versions} versions; state in "
          f"{'Redis' if args.redis else 'the database'}; median CPU ms of {args.repeat} requests")
    print(f"{'page':<70} {'200':>8} {'304':>8} {'saved':>7}")
    client = app.test_client()
    for page in PAGES:
        first = client.get(page)
        assert first.status_code == 200, (page, first.status_code)
        etag = first.headers["ETag"]
        full = [cpu_ms(lambda: client.get(page, headers={"If-None-Match": 'W/"stale"'})) for _ in range(args.repeat)]
        revalidated = []
        for _ in range(args.repeat):
            revalidated.append(cpu_ms(lambda: client.get(page, headers={"If-None-Match": etag})))
        assert client.get(page, headers={"If-None-Match": etag}).status_code == 304
        full_ms, cached_ms = statistics.median(full), statistics.median(revalidated)
        print(f"{page[:70]:<70} {full_ms:8.2f} {cached_ms:8.2f} {1 - cached_ms / full_ms:7.0%}")
    if args.redis:
        from feereg.cache import shared_cache

        cache = shared_cache(app)
        cache.client.delete(*cache.client.scan_iter(f"{cache.prefix}:*"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
