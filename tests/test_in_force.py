"""superseded_from, the in-force range each version carries, and the queries that use it."""
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from feereg.demo.generator import generate
from feereg.models import PUBLISHED_FIELDS, FeeItem, FeeItemVersion
from feereg.services import compare, history, registry
from feereg.services.in_force import in_force_select

from .factories import D, days, item_values, make_firm, make_user, publish

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def admin(app):
    return make_user("admin")


def ranges(session, item):
    """[(amount or 'withdraw', effective_from, superseded_from)] in seq order."""
    return [(v.amount if v.kind == "publish" else "withdraw", v.effective_from, v.superseded_from)
            for v in history.item_history(session, item.id)[::-1]]


def change(session, item, actor, amount, on, **kw):
    registry.update_draft(session, item, item_values(amount=amount), actor, item.lock_version)
    return registry.publish_item(session, item, actor, on, allow_backdate=True, **kw)


def old_in_force(on):
    """The query superseded_from replaced: no later version of the item effective by `on`."""
    later = aliased(FeeItemVersion)
    superseded = exists().where(
        later.item_id == FeeItemVersion.item_id, later.effective_from <= on,
        or_(later.effective_from > FeeItemVersion.effective_from,
            and_(later.effective_from == FeeItemVersion.effective_from, later.seq > FeeItemVersion.seq)))
    return select(FeeItemVersion.id).where(FeeItemVersion.effective_from <= on, ~superseded)


def test_publishing_closes_the_previous_range(session, admin):
    item = publish(make_firm(), admin, effective_from=days(-30), amount="100")
    assert ranges(session, item) == [(D("100.00"), days(-30), None)]
    change(session, item, admin, "120", days(-10))
    session.commit()
    assert ranges(session, item) == [(D("100.00"), days(-30), days(-10)), (D("120.00"), days(-10), None)]


def test_a_future_change_leaves_the_current_version_in_force_until_its_date(session, admin):
    firm = make_firm()
    item = publish(firm, admin, effective_from=days(-30), amount="100")
    change(session, item, admin, "150", days(40))
    session.commit()
    assert ranges(session, item) == [(D("100.00"), days(-30), days(40)), (D("150.00"), days(40), None)]
    assert [v.amount for v in history.schedule_on(session, firm, days(39))] == [D("100.00")]
    assert [v.amount for v in history.schedule_on(session, firm, days(40))] == [D("150.00")]


def test_a_back_dated_change_is_fitted_between_existing_versions(session, admin):
    item = publish(make_firm(), admin, effective_from=days(-60), amount="100")
    change(session, item, admin, "150", days(20))
    change(session, item, admin, "120", days(-20))  # back-dated, published after the future one
    session.commit()
    assert ranges(session, item) == [(D("100.00"), days(-60), days(-20)), (D("150.00"), days(20), None),
                                     (D("120.00"), days(-20), days(20))]


def test_equal_effective_dates_go_to_the_higher_seq(session, admin):
    item = publish(make_firm(), admin, effective_from=days(-10), amount="100")
    change(session, item, admin, "110", days(-10))
    session.commit()
    # The first is never in force: its range is empty.
    assert ranges(session, item) == [(D("100.00"), days(-10), days(-10)), (D("110.00"), days(-10), None)]
    assert [r.version.amount for r in compare.compare_fee_type(session, "DOC", on=days(-10)).rows] == [D("110.00")]


def test_a_withdrawal_ends_the_range_and_drops_the_item(session, admin):
    firm = make_firm()
    item = publish(firm, admin, effective_from=days(-30), amount="100")
    registry.withdraw_item(session, item, admin, days(-5), allow_backdate=True)
    session.commit()
    assert ranges(session, item) == [(D("100.00"), days(-30), days(-5)), ("withdraw", days(-5), None)]
    assert compare.compare_fee_type(session, "DOC", on=days(-5)).rows == []
    assert len(compare.compare_fee_type(session, "DOC", on=days(-6)).rows) == 1


def test_a_batch_with_two_changes_of_one_item(session, admin):
    firm = make_firm()
    item = publish(firm, admin, effective_from=days(-30), amount="100")
    registry.publish_changes(session, firm, [
        registry.Change(item, item_values(amount="130"), days(10)),
        registry.Change(item, item_values(amount="115"), days(-3)),
    ], admin, allow_backdate=True)
    session.commit()
    assert ranges(session, item) == [(D("100.00"), days(-30), days(-3)), (D("130.00"), days(10), None),
                                     (D("115.00"), days(-3), days(10))]


def test_bulk_load_sets_the_ranges(session, admin):
    firm = make_firm()
    values = {name: item_values()[name] for name in PUBLISHED_FIELDS}
    at = datetime(2026, 1, 1)

    def past(day, amount, kind="publish", hour=0):
        return registry.PastVersion(date(2026, 1, day), at + timedelta(hours=hour),
                                    {**values, "amount": D(amount)}, kind)

    registry.load_history(session, [
        registry.PastItem(firm.id, [past(1, "100"), past(20, "130", hour=1), past(10, "115", hour=2),
                                    past(10, "116", hour=3)]),
        registry.PastItem(firm.id, [past(1, "200"), past(5, "200", "withdraw", hour=4)]),
    ], admin)
    session.commit()
    got = {}
    for v in session.scalars(select(FeeItemVersion).order_by(FeeItemVersion.seq)):
        got.setdefault(v.item_id, []).append((v.amount, v.kind, v.effective_from.day,
                                              v.superseded_from and v.superseded_from.day))
    assert list(got.values()) == [
        [(D("100.00"), "publish", 1, 10), (D("130.00"), "publish", 20, None),
         (D("115.00"), "publish", 10, 10), (D("116.00"), "publish", 10, 20)],
        [(D("200.00"), "publish", 1, 5), (D("200.00"), "withdraw", 5, None)],
    ]
    assert history.verify_all(session)[1] == []


def test_in_force_equals_the_not_exists_query_on_a_generated_registry(session, admin):
    generate(session, firms=60, items=400, seed=5)
    session.commit()
    # A few more changes of every kind on top: future, back-dated between, same day, withdrawn.
    items = session.scalars(select(FeeItem).where(FeeItem.status == "published")
                            .order_by(FeeItem.id).limit(12)).all()
    for n, item in enumerate(items):
        on = (days(30), days(-200), days(-400), registry.today())[n % 4]
        if n % 5 == 4:
            registry.withdraw_item(session, item, admin, on, allow_backdate=True)
        else:
            registry.update_draft(session, item, {"amount": item.amount + n + 1}, admin, item.lock_version)
            registry.publish_item(session, item, admin, on, allow_backdate=True)
    session.commit()
    assert history.verify_all(session)[1] == []

    starts = set(session.scalars(select(FeeItemVersion.effective_from)))
    dates = sorted(starts | {d - timedelta(days=1) for d in starts} | {d + timedelta(days=1) for d in starts})
    for on in dates[::max(1, len(dates) // 60)] + [dates[-1], registry.today()]:
        expected = set(session.scalars(old_in_force(on)))
        assert set(session.scalars(select(FeeItemVersion.id).where(history.in_force_on(on)))) == expected, on
        assert {v.id for v in session.scalars(history.versions_in_force(session, on))} == expected, on
        published = set(session.scalars(old_in_force(on).where(FeeItemVersion.kind == "publish")))
        assert set(session.scalars(in_force_select(on, columns=(FeeItemVersion.id,)))) == published, on
