"""Redis as the store every worker shares (feereg/cache.py, FEEREG_REDIS_URL).

gunicorn's workers are processes forked from its master, so here each "worker" is a
process forked from one that imported feereg, running create_app: in one process, Flask-Limiter's Limiter (feereg/extensions.py) is a single
object whose storage the last create_app replaces, and two apps would share counts even in
memory, which proves nothing. A limit of N per minute spread over two workers holds with
Redis (the N+1th request is refused wherever it lands) and does not with the in-memory
storage (each worker counts on its own: 2N pass).
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest

from feereg import create_app
from feereg.cache import CacheUnavailable, SharedCache, shared_cache
from feereg.extensions import limiter

from .redis_support import redis_prefix, redis_url  # noqa: F401  (fixtures)

LIMIT = 4

MASTER = r"""
import json, os, sys
from feereg import create_app
# Every module imported once here, as gunicorn's master does with a preloaded app; each
# worker is a fork of this process and makes its own app.
create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "RATELIMIT_ENABLED": False})

def serve(config, requests):
    client = create_app(config).test_client()
    return [client.get("/api/v1/").status_code for _ in range(requests)]

results = []
for config, requests in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read)
        os.write(write, json.dumps(serve(config, requests)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        results.append(json.loads(pipe.read()))
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


def worker_config(storage: str, prefix: str, tmp_path) -> dict:
    return {"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SEARCH_DIR": str(tmp_path / "search"), "RATELIMIT_ENABLED": True,
            "API_RATE_LIMIT": f"{LIMIT} per minute", "RATELIMIT_STORAGE_URI": storage,
            "RATELIMIT_KEY_PREFIX": prefix}


def run_workers(jobs: list[tuple[dict, int]]) -> list[list[int]]:
    """Fork one worker process per job, one after the other (so the counts are
    deterministic), each making that many requests; return each one's statuses."""
    done = subprocess.run([sys.executable, "-c", MASTER, json.dumps(jobs)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_limit_holds_across_workers_with_redis_and_not_in_memory(redis_url, redis_prefix, tmp_path):
    shared = worker_config(redis_url, redis_prefix, tmp_path)
    apart = worker_config("memory://", redis_prefix, tmp_path)
    down = worker_config("redis://127.0.0.1:1/0", redis_prefix, tmp_path)  # nothing listens on port 1
    # Worker A takes half the allowance, worker B the rest and one more.
    first, second = LIMIT // 2, LIMIT - LIMIT // 2 + 1
    statuses = run_workers([(shared, first), (shared, second), (apart, LIMIT), (apart, LIMIT + 1),
                            (down, LIMIT + 1)])
    assert statuses[:2] == [[200] * first, [200] * (second - 1) + [429]]
    # In memory each worker counts for itself: together they let 2 x LIMIT through.
    assert statuses[2:4] == [[200] * LIMIT, [200] * LIMIT + [429]]
    # Redis configured but down: served, and the limit still counts, in this worker's memory.
    assert statuses[4] == [200] * LIMIT + [429]
    # The counts are under the deployment's prefix, and only there.
    import redis

    keys = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(f"LIMITS:LIMITER/{redis_prefix}/*")]
    assert len(keys) == 1 and "/api/" in keys[0]


def test_site_serves_with_redis_down_and_says_so(tmp_path, caplog):
    """Redis configured but not answering: requests succeed, /healthz says "degraded", and
    the outage is logged as a warning (Flask-Limiter's, once, then in-memory counting)."""
    down = "redis://127.0.0.1:1/0"
    app = create_app({**worker_config(down, "unused", tmp_path), "REDIS_URL": down})
    try:
        with caplog.at_level(logging.WARNING):
            codes = [app.test_client().get("/api/v1/").status_code for _ in range(2)]
            assert app.test_client().get("/healthz").get_json()["status"] == "degraded"
    finally:
        limiter._storage_dead = False  # the Limiter is one object per process: leave it as found
    assert codes == [200, 200]
    assert any("falling back to in-memory storage" in r.getMessage() for r in caplog.records)


def test_shared_cache_operations_and_prefix(redis_url, redis_prefix):
    cache = SharedCache(redis_url, redis_prefix, timeout=0.5)
    assert cache.get("k") is None
    assert cache.add("k", "first") is True and cache.add("k", "second") is False
    assert cache.get("k") == "first"
    cache.set("k", "third", ttl=60)
    assert cache.get("k") == "third" and 0 < cache.client.pttl(f"{redis_prefix}:k") <= 60_000
    cache.delete("k")
    assert cache.get("k") is None
    assert cache.ping() < 0.5


def test_a_dead_redis_costs_a_request_nothing_after_the_first_failure(caplog):
    cache = SharedCache("redis://127.0.0.1:1/0", "feereg-test", timeout=0.5)
    with caplog.at_level(logging.WARNING, logger="feereg.cache"):
        with pytest.raises(CacheUnavailable):
            cache.get("k")
        started = time.perf_counter()
        for _ in range(100):
            with pytest.raises(CacheUnavailable):
                cache.get("k")
        assert time.perf_counter() - started < 0.05  # not tried again during the pause
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


def test_without_redis_there_is_no_shared_cache(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "SEARCH_DIR": str(tmp_path)})
    assert shared_cache(app) is None
    # The password never reaches the log.
    from feereg.cache import _safe
    assert _safe("redis://:s3cret@cache.internal:6379/0") == "redis://…@cache.internal:6379/0"
