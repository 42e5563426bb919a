"""Behind reverse proxies (feereg/proxy.py, FEEREG_PROXY_FIX_*): the client's address for
rate limits and the audit log comes from X-Forwarded-For only as far as the configured
proxies vouch for it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from feereg import create_app
from feereg.extensions import db
from feereg.models import AuditEvent

from .conftest import _empty_tables, _test_config, post_form

#: A client that forged an X-Forwarded-For of its own, then the address our proxy saw.
FORGED, REAL = "198.51.100.9", "203.0.113.7"


@pytest.fixture
def behind(migrated, tmp_path):
    """An app factory: the app with these settings, tables emptied after."""
    made = []

    def make(**config):
        app = create_app({**_test_config(migrated, tmp_path), **config})
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            _empty_tables()
            db.engine.dispose()


def failed_login_address(app, forwarded: str) -> str:
    client = app.test_client()
    headers = {"X-Forwarded-For": forwarded}
    post_form(client, "/account/login", {"email": "nobody@example.com", "password": "wrong-password-1"},
              headers=headers)
    with app.app_context():
        return db.session.scalar(select(AuditEvent.ip).where(AuditEvent.action == "login.failed")
                                 .order_by(AuditEvent.id.desc()).limit(1))


def test_audit_records_the_address_the_proxy_saw(behind):
    assert failed_login_address(behind(PROXY_FIX_X_FOR=1), f"{FORGED}, {REAL}") == REAL


def test_without_a_proxy_forwarded_headers_are_ignored(behind):
    assert failed_login_address(behind(), f"{FORGED}, {REAL}") == "127.0.0.1"


def test_rate_limits_count_per_client_behind_the_proxy(behind):
    app = behind(PROXY_FIX_X_FOR=1, RATELIMIT_ENABLED=True, API_RATE_LIMIT="2 per minute")
    one, other = app.test_client(), app.test_client()

    def get(client, address):
        return client.get("/api/v1/", headers={"X-Forwarded-For": address}).status_code

    assert [get(one, REAL) for _ in range(3)] == [200, 200, 429]
    assert get(other, "203.0.113.8") == 200  # another client behind the same proxy has its own allowance
    # Forging the header does not buy a fresh allowance: the proxy appends the real address.
    assert get(one, f"{FORGED}, {REAL}") == 429


def test_without_a_proxy_a_forged_header_buys_nothing(behind):
    app = behind(RATELIMIT_ENABLED=True, API_RATE_LIMIT="2 per minute")
    client = app.test_client()
    statuses = [client.get("/api/v1/", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                for n in range(3)]
    assert statuses == [200, 200, 429]


def test_https_at_the_proxy_makes_https_links(behind):
    app = behind(PROXY_FIX_X_PROTO=1)
    feed = app.test_client().get("/feeds/changes.atom", headers={"X-Forwarded-Proto": "https"})
    assert b'href="https://localhost/feeds/changes.atom"' in feed.data
    plain = behind().test_client().get("/feeds/changes.atom", headers={"X-Forwarded-Proto": "https"})
    assert b'href="http://localhost/feeds/changes.atom"' in plain.data
