"""Publishing, withdrawing, history and the optimistic lock, through the services."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from feereg.extensions import db
from feereg.models import AuditEvent, FeeItemVersion
from feereg.services import history, registry
from feereg.services.errors import FirmSuspended, NothingToPublish, PermissionDenied, StaleItem

from .factories import D, days, item_values, make_firm, make_user, publish

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def firm(app):
    return make_firm()


@pytest.fixture
def publisher(firm):
    return make_user("publisher", firm)


def test_publish_writes_a_chained_version(session, firm, publisher):
    item = publish(firm, publisher)
    second = publish(firm, publisher, amount="80", fee_type="EIR", name_zh="设备交接单费", unit="per_container")
    session.commit()
    v1, v2 = session.scalars(select(FeeItemVersion).order_by(FeeItemVersion.seq)).all()
    assert (v1.seq, v2.seq) == (1, 2)
    assert v1.prev_hash == "" and v2.prev_hash == v1.hash
    assert v1.hash == history.compute_hash(v1, firm.credit_code)
    assert firm.chain_head == v2.hash and firm.chain_seq == 2
    assert item.status == "published" and not item.has_draft
    assert v2.item_id == second.id and v2.amount == D("80.00")


def test_draft_is_not_public_until_published(session, firm, publisher):
    item = registry.create_draft(session, firm, item_values(), publisher)
    session.commit()
    assert history.schedule_on(session, firm, registry.today()) == []
    registry.publish_item(session, item, publisher, registry.today())
    session.commit()
    assert [v.item_id for v in history.schedule_on(session, firm, registry.today())] == [item.id]


def test_republishing_unchanged_item_is_refused(session, firm, publisher):
    item = publish(firm, publisher)
    with pytest.raises(NothingToPublish):
        registry.publish_item(session, item, publisher, registry.today())


def test_schedule_as_of_a_date_follows_effective_dates(session, firm, publisher):
    start = registry.today() - timedelta(days=100)
    item = publish(firm, publisher, effective_from=start, amount="300")
    registry.update_draft(session, item, item_values(amount="360"), publisher, item.lock_version)
    registry.publish_item(session, item, publisher, start + timedelta(days=50), allow_backdate=True)
    registry.withdraw_item(session, item, publisher, start + timedelta(days=80), allow_backdate=True)
    session.commit()

    def amount_on(offset):
        rows = history.schedule_on(session, firm, start + timedelta(days=offset))
        return [v.amount for v in rows]

    assert amount_on(-1) == []
    assert amount_on(0) == [D("300.00")]
    assert amount_on(49) == [D("300.00")]
    assert amount_on(50) == [D("360.00")]
    assert amount_on(79) == [D("360.00")]
    assert amount_on(80) == []


def test_future_change_does_not_replace_the_current_amount(session, firm, publisher):
    item = publish(firm, publisher, amount="300")
    registry.update_draft(session, item, item_values(amount="330"), publisher, item.lock_version)
    registry.publish_item(session, item, publisher, days(45))
    session.commit()
    assert [v.amount for v in history.schedule_on(session, firm, registry.today())] == [D("300.00")]
    assert [v.amount for v in history.schedule_on(session, firm, days(45))] == [D("330.00")]


def test_backdating_is_refused_for_publishers(session, firm, publisher):
    item = registry.create_draft(session, firm, item_values(), publisher)
    with pytest.raises(NothingToPublish, match="past"):
        registry.publish_item(session, item, publisher, days(-1))


def test_withdrawal_keeps_the_withdrawn_values(session, firm, publisher):
    item = publish(firm, publisher, amount="300")
    registry.update_draft(session, item, item_values(amount="999"), publisher, item.lock_version)
    version = registry.withdraw_item(session, item, publisher, registry.today())
    assert version.kind == "withdraw" and version.amount == D("300.00")
    assert item.status == "withdrawn"


def test_optimistic_lock_refuses_a_stale_form(session, firm, publisher):
    item = publish(firm, publisher)
    session.commit()
    opened_with = item.lock_version
    registry.update_draft(session, item, item_values(amount="500"), publisher, opened_with)
    session.commit()
    with pytest.raises(StaleItem):
        registry.update_draft(session, item, item_values(amount="510"), publisher, opened_with)
    session.rollback()
    assert session.get(type(item), item.id).amount == D("500.00")


def test_publisher_cannot_touch_another_firm(session, firm, publisher):
    other = make_firm()
    with pytest.raises(PermissionDenied):
        registry.create_draft(session, other, item_values(), publisher)
    theirs = publish(other, make_user("publisher", other))
    with pytest.raises(PermissionDenied):
        registry.withdraw_item(session, theirs, publisher, registry.today())


def test_suspended_firm_cannot_publish(session, firm, publisher):
    from feereg.services import firms

    item = registry.create_draft(session, firm, item_values(), publisher)
    firms.set_status(session, firm, "suspended", "licence revoked", make_user("admin"))
    with pytest.raises(FirmSuspended):
        registry.publish_item(session, item, publisher, registry.today())


def test_publishing_is_audited(session, firm, publisher):
    publish(firm, publisher)
    session.commit()
    actions = session.scalars(select(AuditEvent.action)).all()
    assert "item.create" in actions and "item.publish" in actions
