"""Full-text search: one small interface (base.SearchBackend), a Whoosh implementation,
and the after-commit hooks that keep it in step with the registry.

`init_app(app)` binds it in the factory; `get_backend()` gives the configured backend
of the current app. Nothing outside this package imports Whoosh.
"""
from __future__ import annotations

from flask import Flask, current_app

from .base import FACETS, SORTS, Hit, NullBackend, SearchBackend, SearchResult, SearchUnavailable

_EXTENSION = "feereg.search"

__all__ = ["FACETS", "SORTS", "Hit", "NullBackend", "SearchBackend", "SearchResult", "SearchUnavailable",
           "get_backend", "init_app"]


def init_app(app: Flask) -> None:
    from . import hooks  # registers the commit handlers (once per process)

    hooks.register()
    app.extensions[_EXTENSION] = None  # built on first use: it needs the bound database engine


def get_backend(app: Flask | None = None) -> SearchBackend:
    app = app or current_app._get_current_object()
    backend = app.extensions.get(_EXTENSION)
    if backend is None:
        backend = _build(app)
        app.extensions[_EXTENSION] = backend
    return backend


def _build(app: Flask) -> SearchBackend:
    kind = app.config.get("SEARCH_BACKEND", "whoosh")
    if kind in ("null", "none", "", None):
        return NullBackend()
    if kind != "whoosh":
        raise RuntimeError(f"unknown SEARCH_BACKEND {kind!r}: use 'whoosh' or 'null'")
    from ..extensions import db
    from ..services.registry import today
    from .whoosh_backend import WhooshBackend

    with app.app_context():
        engine = db.engine
    return WhooshBackend(app.config["SEARCH_DIR"], engine, app.config["EXCHANGE_RATES"], today,
                         writer_timeout=app.config.get("SEARCH_WRITER_TIMEOUT", 5.0))
