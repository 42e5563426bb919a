"""Keeping the index in step: the search side of feereg.services.hooks.

The Whoosh backend is written after the database commit, so it never holds a
rolled-back change; an exception there is logged by the hook dispatcher and never undoes
the commit (`feereg reindex` repairs the index). A backend whose index lives in the
database (`transactional`: PostgreSQL) is written inside the publishing transaction
instead, and commits or rolls back with it.
"""
from __future__ import annotations

import logging

from flask import current_app, has_app_context

from ..services import hooks

log = logging.getLogger(__name__)


def register() -> None:
    hooks.on_publish(index_in_transaction)
    hooks.after_commit(index_committed_items)
    if hasattr(hooks, "after_bulk_load"):
        hooks.after_bulk_load(rebuild_after_bulk_load)


def _backend():
    if not has_app_context():  # a script committing outside the app: reindex later
        log.warning("search index not updated (no application context); run `feereg reindex`")
        return None
    from . import get_backend

    return get_backend()


def index_in_transaction(session, versions: list) -> None:
    if not has_app_context():  # the after-commit handler says so
        return
    from . import get_backend

    backend = get_backend()
    if getattr(backend, "transactional", False):
        backend.index_in_transaction(session.connection(), sorted({v.item_id for v in versions}))


def index_committed_items(item_ids: list[int]) -> None:
    backend = _backend()
    if backend is None or getattr(backend, "transactional", False):  # indexed by the transaction itself
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
