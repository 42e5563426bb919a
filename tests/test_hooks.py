"""The one commit hook: derived work sees published items after commit, never after rollback."""
import pytest
from sqlalchemy import func, select

from feereg.models import FeeItemVersion
from feereg.services import hooks

from .factories import make_firm, make_user, publish


@pytest.fixture
def recorded():
    calls = {"in_tx": [], "after": []}

    def in_tx(session, versions):
        calls["in_tx"].append([v.item_id for v in versions])

    def after(item_ids):
        calls["after"].append(list(item_ids))

    hooks.on_publish(in_tx)
    hooks.after_commit(after)
    yield calls
    hooks._in_transaction.remove(in_tx)
    hooks._after_commit.remove(after)


def test_after_commit_handlers_see_items_only_once_committed(session, recorded):
    firm = make_firm()
    user = make_user("publisher", firm)
    item = publish(firm, user)
    assert recorded["in_tx"] == [[item.id]]
    assert recorded["after"] == []
    session.commit()
    assert recorded["after"] == [[item.id]]


def test_rolled_back_publish_reaches_no_after_commit_handler(session, recorded):
    firm = make_firm()
    user = make_user("publisher", firm)
    session.commit()
    recorded["after"].clear()
    publish(firm, user)
    session.rollback()
    session.commit()
    assert recorded["after"] == []


def test_a_failing_after_commit_handler_loses_no_database_change(session, recorded, caplog):
    def broken(item_ids):
        raise OSError("index directory is gone")

    hooks.after_commit(broken)
    try:
        firm = make_firm()
        user = make_user("publisher", firm)
        publish(firm, user)
        session.commit()
    finally:
        hooks._after_commit.remove(broken)
    assert session.scalar(select(func.count()).select_from(FeeItemVersion)) == 1
    assert "feereg reindex" in caplog.text
