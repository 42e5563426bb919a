"""The one place where derived work hangs off a published change.

`published(session, versions)` is called by the registry service inside the
publishing transaction. In-transaction handlers (anomaly checks) run at once and
share the transaction's fate; after-commit handlers (search indexing) see the
versions only once the database change is durable, and a failure in them is
logged, never raised: the database is the source of truth and `feereg reindex`
repairs the rest.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

InTransactionHandler = Callable[[Session, list], None]
AfterCommitHandler = Callable[[list[int]], None]

_in_transaction: list[InTransactionHandler] = []
_after_commit: list[AfterCommitHandler] = []
_after_bulk_load: list[Callable[[], None]] = []
_PENDING_KEY = "feereg.published_item_ids"
_BULK_KEY = "feereg.bulk_loaded"


def on_publish(handler: InTransactionHandler) -> InTransactionHandler:
    if handler not in _in_transaction:
        _in_transaction.append(handler)
    return handler


def after_commit(handler: AfterCommitHandler) -> AfterCommitHandler:
    if handler not in _after_commit:
        _after_commit.append(handler)
    return handler


def after_bulk_load(handler: Callable[[], None]) -> Callable[[], None]:
    """Register a full rebuild of derived state, run after a bulk load commits."""
    if handler not in _after_bulk_load:
        _after_bulk_load.append(handler)
    return handler


def published(session: Session, versions: Iterable) -> None:
    versions = list(versions)
    if not versions:
        return
    for handler in _in_transaction:
        handler(session, versions)
    session.info.setdefault(_PENDING_KEY, set()).update(v.item_id for v in versions)


def items_changed(session: Session, item_ids: Iterable[int]) -> None:
    """Note items whose derived state must follow, without a new version (e.g. a draft)."""
    session.info.setdefault(_PENDING_KEY, set()).update(item_ids)


def bulk_loaded(session: Session) -> None:
    """Note a bulk load (the demo generator, a restore): item by item handling would be
    slower than rebuilding, so after commit each derived store is rebuilt whole instead."""
    session.info[_BULK_KEY] = True


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    item_ids = session.info.pop(_PENDING_KEY, None)
    if session.info.pop(_BULK_KEY, False):
        _run(_after_bulk_load)
        return
    if item_ids:
        _run(_after_commit, sorted(item_ids))


def _run(handlers, *args) -> None:
    for handler in handlers:
        try:
            handler(*args)
        except Exception:  # noqa: BLE001 - derived state must never undo a commit
            log.exception("after-commit handler %s failed; run `feereg reindex`", handler)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_BULK_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_soft_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING_KEY, None)
    session.info.pop(_BULK_KEY, None)
