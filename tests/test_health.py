"""/healthz (feereg/views/health.py): what a load balancer polls. JSON, no sign-in, never
rate-limited, never cached; 503 only when the database is away, "degraded" when Redis is."""
from __future__ import annotations

import pytest

from feereg import create_app
from feereg.extensions import limiter

from .redis_support import redis_url  # noqa: F401  (fixture)


def make_app(tmp_path, **config):
    return create_app({"TESTING": True, "SECRET_KEY": "t", "SEARCH_DIR": str(tmp_path / "search"),
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'health.sqlite'}", **config})


def check(app):
    response = app.test_client().get("/healthz")
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers and "Set-Cookie" not in response.headers
    return response.status_code, response.get_json()


def test_all_reachable(tmp_path, redis_url):  # noqa: F811
    status, body = check(make_app(tmp_path, REDIS_URL=redis_url))
    assert status == 200 and body["status"] == "ok"
    assert body["database"]["ok"] is True and body["redis"] == {"configured": True, "ok": True,
                                                                "ms": body["redis"]["ms"]}


def test_without_redis_configured(tmp_path):
    status, body = check(make_app(tmp_path))
    assert status == 200 and body["status"] == "ok"
    assert body["redis"] == {"configured": False, "ok": None}


def test_redis_down_is_degraded_not_down(tmp_path):
    # Every server shares one Redis: reporting it as down would take them all out of the balancer.
    status, body = check(make_app(tmp_path, REDIS_URL="redis://127.0.0.1:1/0"))
    assert status == 200 and body["status"] == "degraded"
    assert body["redis"] == {"configured": True, "ok": False, "error": "CacheUnavailable"}


@pytest.mark.parametrize("url", ["postgresql://feereg:s3cret@127.0.0.1:1/feereg",
                                 "sqlite:////nonexistent-directory/feereg.sqlite"])
def test_database_down_is_503_and_names_no_host(tmp_path, url):
    app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
    status, body = check(app)
    assert status == 503 and body["status"] == "down"
    assert body["database"] == {"ok": False, "error": "OperationalError"}
    response = app.test_client().get("/healthz")
    assert b"s3cret" not in response.data and b"127.0.0.1" not in response.data


def test_never_rate_limited(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_APPLICATION="3 per minute")
    try:
        client = app.test_client()
        assert [client.get("/healthz").status_code for _ in range(10)] == [200] * 10
        # The limit is there for everything else.
        assert [client.get("/api").status_code for _ in range(4)][-1] == 429
    finally:
        # Flask-Limiter keeps application limits on its one object per process: take them off.
        limiter.limit_manager.set_application_limits([])
