"""Test fixtures. Every test that touches the database runs once on SQLite and once on
PostgreSQL (127.0.0.1:5432, user postgres, database `test` as the admin connection).

Where CI=true an unreachable PostgreSQL fails the run; elsewhere it skips, loudly.
"""
from __future__ import annotations

import contextvars
import os
import re
import uuid
import warnings
from datetime import date
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from feereg import create_app
from feereg.extensions import db
from feereg.i18n import compile_catalogs

PG_ADMIN_URL = os.environ.get("FEEREG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Tables emptied between tests; fee_type is reference data seeded by the migrations.
KEEP_TABLES = {"fee_type", "alembic_version"}


def pytest_configure(config):
    compile_catalogs()


def _postgres_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "feereg.sqlite"
        yield f"sqlite:///{path}"
        return
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable: {problem}")
        warnings.warn(f"SKIPPING PostgreSQL tests: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"feereg_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated(database_url, tmp_path_factory):
    """The schema, built by the real migrations once per database."""
    from flask_migrate import upgrade

    app = create_app(_test_config(database_url, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_url


def _test_config(database_url: str, tmp: Path) -> dict:
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "SEARCH_DIR": str(tmp / "search"),
        "PDF_CACHE_DIR": str(tmp / "pdf-cache"),
        "BULK_DIR": str(tmp / "bulk"),
        "RATELIMIT_ENABLED": False,
        "PASSWORD_MIN_LENGTH": 10,
        "PASSWORD_HASH_FAST": True,
        "SERVER_NAME": None,
    }


class IsolatedClient(FlaskClient):
    """Each request runs in an empty context, as in production, not inside the test's own
    app context: otherwise Flask reuses that context and `g` (the logged-in user, the
    chosen language) would leak from one request, or one client, to the next."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(migrated, tmp_path):
    app = create_app(_test_config(migrated, tmp_path))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables():
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def english(app):
    """Service messages follow the locale (Chinese by default); read them in English."""
    from flask_babel import force_locale

    with force_locale("en"):
        yield


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    page = client.get(url)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {url} (status {page.status_code})"
    return match.group(1)


def post_form(client, url: str, data: dict, form_page: str | None = None, **kw):
    """POST like a browser: take the CSRF token from the page that shows the form."""
    data = dict(data)
    data["csrf_token"] = csrf_token(client, form_page or url)
    return client.post(url, data=data, **kw)


def login(client, email: str, password: str = "correct-horse-9"):
    response = post_form(client, "/account/login", {"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response
