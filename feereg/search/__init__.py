"""Full-text search: one small interface (base.SearchBackend), two implementations that
give the same answers, and the hooks that keep them in step with the registry.

SEARCH_BACKEND (FEEREG_SEARCH_BACKEND) picks one:

* "whoosh" — an index directory beside the application (whoosh_backend.py), updated after
  each commit; for one server;
* "postgres" — tables in the registry's PostgreSQL database (pg_backend.py), updated inside
  each publishing transaction; for several servers;
* "null" — no search.

`init_app(app)` checks the choice and binds it in the factory; `get_backend()` gives the
configured backend of the current app. Nothing outside this package imports Whoosh.
"""
from __future__ import annotations

from flask import Flask, current_app

from .base import FACETS, SORTS, Hit, NullBackend, SearchBackend, SearchResult, SearchUnavailable

_EXTENSION = "feereg.search"

__all__ = ["FACETS", "SORTS", "Hit", "NullBackend", "SearchBackend", "SearchResult", "SearchUnavailable",
           "get_backend", "init_app"]


BACKENDS = ("whoosh", "postgres", "null")


def init_app(app: Flask) -> None:
    from . import hooks  # registers the commit handlers (once per process)

    kind = _kind(app)
    if kind == "postgres":  # refuse at start, not at the first search
        from .pg_backend import check_database

        check_database(app.config["SQLALCHEMY_DATABASE_URI"])
    hooks.register()
    app.extensions[_EXTENSION] = None  # built on first use: it needs the bound database engine


def get_backend(app: Flask | None = None) -> SearchBackend:
    app = app or current_app._get_current_object()
    backend = app.extensions.get(_EXTENSION)
    if backend is None:
        backend = _build(app)
        app.extensions[_EXTENSION] = backend
    return backend


def _kind(app: Flask) -> str:
    kind = app.config.get("SEARCH_BACKEND") or "null"
    kind = "null" if kind == "none" else kind
    if kind not in BACKENDS:
        raise RuntimeError(f"unknown SEARCH_BACKEND {kind!r}: use one of {', '.join(BACKENDS)}")
    return kind


def _build(app: Flask) -> SearchBackend:
    kind = _kind(app)
    if kind == "null":
        return NullBackend()
    from ..extensions import db
    from ..services.registry import today

    with app.app_context():
        engine = db.engine
    if kind == "postgres":
        from .pg_backend import PgBackend

        return PgBackend(engine, app.config["EXCHANGE_RATES"], today,
                         auto_build_max_items=app.config.get("SEARCH_AUTO_REBUILD_MAX_ITEMS", 20_000))
    from .whoosh_backend import WhooshBackend

    return WhooshBackend(app.config["SEARCH_DIR"], engine, app.config["EXCHANGE_RATES"], today,
                         writer_timeout=app.config.get("SEARCH_WRITER_TIMEOUT", 5.0))
