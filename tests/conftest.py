"""Test fixtures. Every test that touches the database runs once on SQLite and once on
PostgreSQL (127.0.0.1:5432, user postgres, database `test` as the admin connection).

Where CI=true an unreachable PostgreSQL fails the run; elsewhere it skips, loudly.

Search tests run against every search backend that the database can carry: Whoosh on
SQLite; Whoosh and the PostgreSQL backend on PostgreSQL. A test module opts in with
`pytestmark = pytest.mark.search_backends` (a searching test elsewhere carries the mark
itself), a test in it opts out with `@pytest.mark.whoosh_only`; the `search_backend`
fixture says which backend a test's app uses. Tests marked `postgres` run on PostgreSQL only.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
import os
import re
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from feereg import create_app
from feereg.extensions import db
from feereg.search import pg_store
from feereg.i18n import compile_catalogs
from feereg.services import jobs

PG_ADMIN_URL = os.environ.get("FEEREG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: Tables emptied between tests; fee_type is reference data seeded by the migrations.
KEEP_TABLES = {"fee_type", "alembic_version"}


#: Backends a `search_backends` test runs against (SQLite carries only Whoosh).
SEARCH_BACKENDS = ("whoosh", "postgres")


def pytest_configure(config):
    config.addinivalue_line("markers", "search_backends: runs against every search backend (tests/conftest.py)")
    config.addinivalue_line("markers", "whoosh_only: a search test about the Whoosh backend itself")
    compile_catalogs()


def pytest_generate_tests(metafunc):
    if "search_backend" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("whoosh_only"):
        return
    if any("search_backend" in mark.args[0] for mark in metafunc.definition.iter_markers("parametrize")):
        return  # the test names its backends itself
    if metafunc.definition.get_closest_marker("search_backends") is not None:
        metafunc.parametrize("search_backend", SEARCH_BACKENDS, indirect=True)


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only combinations never run on SQLite: left out, not skipped."""
    kept, dropped = [], []
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        on_sqlite = params.get("database_url") == "sqlite"
        if on_sqlite and (params.get("search_backend") == "postgres" or item.get_closest_marker("postgres")):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _postgres_available() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@contextmanager
def scratch_postgres(purpose: str):
    """An empty PostgreSQL database of its own, dropped afterwards; yields its URL.

    Where PostgreSQL is unreachable: a failure in CI, elsewhere a skip whose reason (shown by
    -ra) names what was skipped. Not warnings.warn: the suite turns warnings into errors."""
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and unreachable: {problem}")
        pytest.skip(f"SKIPPING {purpose}: PostgreSQL unreachable: {problem}")
    name = f"feereg_{purpose.split()[0]}_{os.getpid()}_{uuid.uuid4().hex[:6]}".lower()
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "feereg.sqlite"
        yield f"sqlite:///{path}"
        return
    with scratch_postgres("test (the PostgreSQL half of the suite)") as url:
        yield url


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
def search_backend(request) -> str:
    """The SEARCH_BACKEND of the test's app: "whoosh" unless the test runs against each."""
    return getattr(request, "param", "whoosh")


@pytest.fixture
def app(migrated, tmp_path, search_backend):
    app = create_app({**_test_config(migrated, tmp_path), "SEARCH_BACKEND": search_backend})
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        # A job a page queued (a bulk file, a report) runs in a thread of this process: it must
        # end before the tables are emptied, or it reads them under the TRUNCATE (a deadlock)
        # and writes into the next test's registry.
        assert jobs.join_threads(120), "a job thread outlived its test"
        _empty_tables()
        db.engine.dispose()


def _empty_tables():
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            names = [f'"{t.name}"' for t in tables]
            # The PostgreSQL search backend's tables (migration 0007): never built again.
            if pg_store.schema_exists(conn):
                names += [f"search.{table}" for table in pg_store.TABLES]
            conn.execute(text("TRUNCATE " + ", ".join(names) + " RESTART IDENTITY CASCADE"))
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
