"""Keeping the index in step: the search side of feereg.services.hooks.

Handlers run after the database commit, so the index never holds a rolled-back
change; an exception here is logged by the hook dispatcher and never undoes the
commit (`feereg reindex` repairs the index).
"""
from __future__ import annotations

import logging

from flask import current_app, has_app_context

from ..services import hooks

log = logging.getLogger(__name__)


def register() -> None:
    hooks.after_commit(index_committed_items)
    if hasattr(hooks, "after_bulk_load"):
        hooks.after_bulk_load(rebuild_after_bulk_load)


def _backend():
    if not has_app_context():  # a script committing outside the app: reindex later
        log.warning("search index not updated (no application context); run `feereg reindex`")
        return None
    from . import get_backend

    return get_backend()


def index_committed_items(item_ids: list[int]) -> None:
    backend = _backend()
    if backend is None:
        return
    if backend.name == "whoosh" and not backend.exists():
        # First change of a fresh installation, or the directory was lost: building from
        # the database includes these items. A big registry waits for `feereg reindex`.
        if _registry_is_small():
            backend.rebuild()
            return
        raise RuntimeError("search index missing; run `feereg reindex`")
    backend.index_items(item_ids)


def rebuild_after_bulk_load() -> None:
    backend = _backend()
    if backend is not None:
        backend.rebuild()


def _registry_is_small() -> bool:
    from sqlalchemy import func, select

    from ..extensions import db
    from ..models import FeeItem

    with db.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(FeeItem)).scalar_one()
    return count <= current_app.config.get("SEARCH_AUTO_REBUILD_MAX_ITEMS", 20_000)
