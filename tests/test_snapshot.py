"""The in-memory snapshot of versions in force that comparisons and quotes rank on: it must
follow the database exactly — other connections' commits, commits out of id order,
firm changes, an emptied database — and the quote ranking built on it must give the
page that ranking every firm exactly gives."""
import random
from collections import Counter
import time

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from feereg.extensions import db
from feereg.services import compare, firms, quote, rates, registry, snapshot
from feereg.services.quote import Shipment

from .factories import D, days, item_values, make_firm, make_user, publish

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def admin(app):
    return make_user("admin")


def thc(firm, actor, amount, **kw):
    values = dict(fee_type="THC", name_zh="", name_en="", unit="per_container", container_size="40",
                  amount=str(amount), ports="")
    values.update(kw)
    return publish(firm, actor, effective_from=kw.pop("effective_from", None) or days(-30), **values)


def amounts(session):
    return [r.amount_cny for r in compare.compare_fee_type(session, "THC").rows]


def test_commits_from_another_connection_show_on_the_next_read(session, admin):
    first = make_firm("shipping_line")
    thc(first, admin, 300)
    session.commit()
    assert amounts(session) == [D("300.00")]

    # Another process: its own engine, its own session, the same database.
    other_engine = create_engine(db.engine.url)
    with Session(other_engine) as other:
        firm = other.merge(first)
        actor = other.merge(admin)
        item = registry.create_draft(other, firm, item_values(fee_type="THC", name_zh="", name_en="",
                                                              unit="per_container", container_size="40",
                                                              amount="250", ports=""), actor)
        registry.publish_item(other, item, actor, days(-1), allow_backdate=True)
        other.commit()
    other_engine.dispose()
    assert amounts(session) == [D("250.00"), D("300.00")]


def test_a_new_version_replaces_the_old_and_a_withdrawal_removes_it(session, admin):
    firm = make_firm("shipping_line")
    item = thc(firm, admin, 300)
    session.commit()
    assert amounts(session) == [D("300.00")]
    item.amount = D("320")
    registry.publish_item(session, item, admin, days(-1), allow_backdate=True)
    session.commit()
    assert amounts(session) == [D("320.00")]
    # The old amount is still what was in force before the change.
    assert [r.amount_cny for r in compare.compare_fee_type(session, "THC", on=days(-5)).rows] == [D("300.00")]
    # A change effective later is not in force yet.
    item.amount = D("999")
    registry.publish_item(session, item, admin, days(10))
    session.commit()
    assert amounts(session) == [D("320.00")]
    assert [r.amount_cny for r in compare.compare_fee_type(session, "THC", on=days(10)).rows] == [D("999.00")]
    registry.withdraw_item(session, item, admin, registry.today())
    session.commit()
    assert amounts(session) == []


def test_an_uncommitted_publish_is_not_cached(session, admin):
    firm = make_firm("shipping_line")
    thc(firm, admin, 300)
    session.commit()
    thc(make_firm("shipping_line"), admin, 100)
    session.flush()
    assert amounts(session) == [D("300.00")]   # the snapshot reads committed data only
    session.rollback()
    assert amounts(session) == [D("300.00")]


def test_suspending_a_firm_takes_it_out_of_quotes(session, admin):
    a = make_firm("shipping_line", name_zh="甲")
    b = make_firm("shipping_line", name_zh="乙")
    for firm, amount in ((a, 100), (b, 200)):
        thc(firm, admin, amount)
        publish(firm, admin, effective_from=days(-30), fee_type="DOC", name_zh="", name_en="", unit="per_bl",
                amount="50", ports="")
    session.commit()
    shipment = Shipment("YANTIAN", "export", {"40": 1})

    def quoted():
        return [q.firm.name_zh for q in quote.quote_shipment(session, shipment).quotes
                if q.firm.category == "shipping_line"]

    assert quoted() == ["甲", "乙"]
    firms.set_status(session, a, "suspended", "audit", admin)   # audited: the snapshot follows the log
    session.commit()
    assert quoted() == ["乙"]
    firms.update_profile(session, b, {"ports": ["SHEKOU"]}, admin)
    session.commit()
    assert quoted() == []


def test_an_emptied_and_refilled_database_is_read_again(session, admin, app):
    firm = make_firm("shipping_line")
    thc(firm, admin, 300)
    session.commit()
    assert amounts(session) == [D("300.00")]
    from .conftest import _empty_tables

    db.session.remove()
    _empty_tables()
    admin = make_user("admin")
    thc(make_firm("shipping_line"), admin, 111)
    db.session.commit()
    assert amounts(db.session) == [D("111.00")]


def test_ids_committed_out_of_order_are_not_skipped(session, admin):
    """On PostgreSQL a transaction can commit after a later one took a higher id; the
    snapshot looks again for the ids it skipped. (SQLite has one writer at a time, so
    ids commit in order there; the gap bookkeeping is exercised below on both.)"""
    if db.engine.dialect.name != "postgresql":
        position = snapshot.Position(version_id=4)
        snapshot._advance(position, "version", [5, 7, 9], now=time.monotonic())
        assert [g[:2] for g in position.version_gaps] == [[6, 6], [8, 8]] and position.version_id == 9
        snapshot._advance(position, "version", [8], now=time.monotonic())
        assert [g[:2] for g in position.version_gaps] == [[6, 6]]
        return
    slow_firm, fast_firm = make_firm("shipping_line"), make_firm("shipping_line")
    session.commit()
    assert amounts(session) == []
    slow = Session(db.engine)
    fast = Session(db.engine)
    try:
        for s, firm, amount in ((slow, slow_firm, "100"), (fast, fast_firm, "200")):
            actor, firm = s.merge(admin), s.merge(firm)
            item = registry.create_draft(s, firm, item_values(fee_type="THC", name_zh="", name_en="",
                                                              unit="per_container", container_size="40",
                                                              amount=amount, ports=""), actor)
            registry.publish_item(s, item, actor, days(-1), allow_backdate=True)
            s.flush()   # the slow one holds the lower ids, uncommitted
        fast.commit()
        assert amounts(session) == [D("200.00")]
        slow.commit()
        assert amounts(session) == [D("100.00"), D("200.00")]
    finally:
        slow.close()
        fast.close()


# --- the quote ranking --------------------------------------------------------------------------

def _random_registry(rng: random.Random, admin) -> None:
    sizes = ("", "20", "40", "40HQ")
    for n in range(24):
        category = "shipping_line" if n % 2 else "offport_yard"
        firm = make_firm(category, ports=("YANTIAN",) if n % 5 else ("YANTIAN", "SHEKOU"), name_zh=f"随机{n:02d}")
        types = (("THC", "per_container"), ("THC", "per_teu"), ("DOC", "per_bl"), ("EIR", "per_container"),
                 ("SEAL", "per_container"), ("MANIFEST", "per_bl")) if category == "shipping_line" else \
            (("LOLO", "per_container"), ("STORAGE", "per_container_day"), ("EIR", "per_container"))
        for code, unit in types:
            for _ in range(rng.choice((0, 1, 1, 2))):
                values = dict(fee_type=code, name_zh="", name_en="", unit=unit, ports="",
                              container_size=rng.choice(sizes) if unit in ("per_container", "per_container_day")
                              else "", amount=str(rng.choice((10, 33.33, 50, 50.01, 99.99, 100, 0))),
                              currency=rng.choice(("CNY", "CNY", "USD", "HKD")),
                              direction=rng.choice(("", "", "export", "import")),
                              cargo_scope=rng.choice(("", "", "", "reefer")))
                if unit == "per_container_day" and rng.random() < 0.6:
                    values["tiers"] = rng.choice(("free:3;4-10:20;11-:40", "free:5;6-:15", "1-2:5;3-:9.99"))
                publish(firm, admin, effective_from=days(-rng.randrange(1, 60)), **values)


def random_change(session, rng: random.Random, admin, step: int) -> None:
    """One change of the kinds a registry sees, chosen by `step`, committed."""
    from feereg.models import FeeItem

    kind = step % 7
    publishing = {i.firm for i in session.query(FeeItem).all()}
    # A suspended firm cannot publish: it takes part through kind 3 (reinstated).
    firm = rng.choice(sorted((f for f in publishing if kind == 3 or not f.is_suspended), key=lambda f: f.id))
    items = session.query(FeeItem).filter_by(firm_id=firm.id, status="published").all()
    if kind in (0, 1) and items:  # a new amount in force now: the common change
        item = rng.choice(items)
        item.amount = rng.choice([a for a in (D(1), D(45), D(250), D(999)) if a != item.amount])
        registry.publish_item(session, item, admin, days(-1), allow_backdate=True)
    elif kind == 2 and items:
        registry.withdraw_item(session, rng.choice(items), admin, registry.today())
    elif kind == 3:
        firms.set_status(session, firm, "suspended" if firm.status == "active" else "active", "audit", admin)
    elif kind == 4:  # a rename and new ports: the firm shows differently wherever it publishes
        firms.update_profile(session, firm, {"name_zh": f"改名{step}", "name_en": f"Renamed {step}",
                                             "ports": rng.choice((["YANTIAN"], ["SHEKOU"], ["YANTIAN", "SHEKOU"]))},
                             admin)
    elif kind == 5:  # a firm new to the registry, cheap enough to lead
        newcomer = make_firm(rng.choice(("shipping_line", "offport_yard")), name_zh=f"新来{step}")
        for code, unit in (("THC", "per_container"), ("DOC", "per_bl"), ("LOLO", "per_container")):
            publish(newcomer, admin, effective_from=days(-2), fee_type=code, name_zh="", name_en="", unit=unit,
                    container_size="", amount="1", ports="")
    elif items:  # a change effective later: nothing moves today
        item = rng.choice(items)
        item.amount = D("0.5") if item.amount != D("0.5") else D("0.25")
        registry.publish_item(session, item, admin, days(5))
    session.commit()


def test_a_page_of_any_size_is_the_head_of_ranking_every_firm(session, admin):
    _random_registry(random.Random(20261124), admin)
    session.commit()
    shipments = [Shipment("YANTIAN", "export", {"20": 2, "40HQ": 1}, bills=2),
                 Shipment("YANTIAN", "import", {"40": 1}, storage_days=12),
                 Shipment("YANTIAN", "export", {"20": 1, "40": 1}, storage_days=4, cargo_scope="reefer"),
                 Shipment("SHEKOU", "import", {"40HQ": 3}, storage_days=7)]
    for shipment in shipments:
        full = quote.quote_shipment(session, shipment, per_category=1000)
        assert full.quotes, shipment
        for size in (1, 2, 3, 5, 8):
            page = quote.quote_shipment(session, shipment, per_category=size, itemised=1)
            for group in full.groups:
                head = [(q.firm.id, q.total_cny, q.complete) for q in group.quotes[:size]]
                got = next(g for g in page.groups if g.category == group.category)
                assert [(q.firm.id, q.total_cny, q.complete) for q in got.quotes] == head, (shipment, size)
                assert got.total == group.total
                # The first firm's lines carry the registry's rows (names); the rest, pricing fields.
                assert hasattr(got.quotes[0].lines[0].version, "name_zh") if got.quotes[0].lines else True


def test_pricing_fields_carry_what_pricing_needs(session, admin):
    firm = make_firm("offport_yard")
    publish(firm, admin, effective_from=days(-3), fee_type="STORAGE", name_zh="", name_en="",
            unit="per_container_day", container_size="20", amount="12.34", currency="USD",
            tiers="free:3;4-:12.34", ports="")
    session.commit()
    snap = snapshot.current(session)
    rows = snap.rows(registry.today(), fee_types=["STORAGE"])
    (fields,) = snapshot.pricing_fields(snap, rows)
    assert (fields.unit, fields.container_size, fields.amount, fields.currency, fields.tiers) == \
        ("per_container_day", "20", D("12.34"), "USD", "free:3;4-:12.34")
    table = rates.rates_on(registry.today(), [{"from": "2000-01-01", "rates": {"USD": "7.1"}}])
    cents, converted = snap.cny_cents(rows, table)
    assert converted.tolist() == [True] and cents.tolist() == [8761]   # 12.34 × 7.1 = 87.614 → 87.61
    assert np.all(snap.versions.valid_until[rows] == snapshot.OPEN)


def test_replaced_rows_are_dropped_once_they_are_many(session, admin):
    firm = make_firm("shipping_line")
    item = thc(firm, admin, 100)
    session.commit()
    amounts(session)
    for amount in range(101, 111):
        item.amount = D(amount)
        registry.publish_item(session, item, admin, registry.today())
        session.commit()
        assert amounts(session) == [D(f"{amount}.00")]
    versions = snapshot.current(session).versions
    # 11 versions of one item, each re-read on its publish: without compaction 66 rows
    assert len(versions) < 2 * 11 and np.count_nonzero(versions.alive) == 11


def test_warm_up_builds_the_snapshot_a_request_then_reuses(session, admin, app):
    thc(make_firm("shipping_line"), admin, 300)
    session.commit()
    seen = []
    snapshot.warm_in_background(app, then=lambda: seen.append(snapshot._caches[db.engine]._snapshot)).join(timeout=30)
    engine = db.engine
    cache = snapshot._caches[engine]
    built = cache._snapshot
    assert built is not None and len(built.versions) == 1
    assert seen == [built]  # what comes next (the search columns) runs after the build, once
    assert snapshot.current(session) is built   # nothing new: the same snapshot


def test_versions_extended_in_place_never_change_what_an_older_snapshot_sees():
    """Appends go past the end of shared buffers: an older Versions keeps its rows and its
    `alive`, and two extensions of one base (a stale snapshot extended again) each get
    their own rows, never the other's."""
    import numpy as np

    from feereg.services.snapshot import _ARRAYS, Versions

    def versions(ids):
        return Versions(**{name: np.array(ids).astype(dtype) for name, dtype in _ARRAYS},
                        alive=np.ones(len(ids), dtype=bool))

    base = versions(list(range(1, 101))).with_room()
    first = base.extended(np.array([5]), versions([1001]))
    second = first.extended(np.array([6]), versions([1002]))
    assert list(base.id[-1:]) == [100] and base.alive.all() and len(base) == 100
    assert list(first.id[-1:]) == [1001] and not first.alive[4] and first.alive[5]
    assert list(second.id[-2:]) == [1001, 1002] and not second.alive[4] and not second.alive[5]
    # `first` extended again: its own buffer is filled past it, so it gets fresh buffers.
    other = first.extended(np.array([7]), versions([2002]))
    assert list(other.id[-2:]) == [1001, 2002] and list(second.id[-2:]) == [1001, 1002]
    assert other.store is not second.store
    # Many appends: the buffers grow and keep every row in order.
    grown = second
    for n in range(3000):
        grown = grown.extended(np.array([], dtype=np.int64), versions([5000 + n]))
    assert list(grown.id[-3000:]) == list(range(5000, 8000)) and len(grown) == 3102


def test_the_firm_name_order_follows_a_rename_and_survives_a_plain_publish(session, admin):
    """Every publish reads its firm again; the name order is kept only while no name changed."""
    def by_name(lang):
        comparison = compare.compare_fee_type(session, "THC", sort="firm", lang=lang)
        return list(dict.fromkeys(r.firm.id for r in comparison.rows))

    names = (("丙公司", "Charlie Lines"), ("甲公司", "alpha lines"), ("乙公司", ""))
    made = [make_firm("shipping_line", name_zh=zh, name_en=en) for zh, en in names]
    for firm in made:
        thc(firm, admin, 300)
    session.commit()
    # English: the English name (any case), else the Chinese one; Chinese: the Chinese name.
    assert by_name("en") == [made[1].id, made[0].id, made[2].id]
    zh_order = sorted(made, key=lambda f: f.name_zh.lower())
    assert by_name("zh") == [f.id for f in zh_order]
    ranks = snapshot.current(session).firms._ranks

    thc(made[2], admin, 280)  # a publish, no name changed: the order is reused, not sorted again
    session.commit()
    assert by_name("en") == [made[1].id, made[0].id, made[2].id]
    assert snapshot.current(session).firms._ranks["en"] is ranks["en"]

    firms.update_profile(session, made[2], {"name_en": "Aardvark Shipping"}, admin)
    session.commit()
    assert by_name("en") == [made[2].id, made[1].id, made[0].id]
    assert by_name("zh") == [f.id for f in zh_order]


def test_a_ranking_brought_up_to_date_firm_by_firm_equals_one_computed_afresh(session, admin, monkeypatch):
    """A shipment's figures are reused on later snapshots, recomputing only the firms that
    changed: after every kind of change the ranking must be what ranking afresh gives."""
    from feereg.models import FeeItem
    from feereg.services import quote_rank, quote_rules

    partial = []  # how many firms each firm-by-firm update recomputed
    whole = quote_rank.firm_scores

    def spy(*args, only=None, **kw):
        if only is not None:
            partial.append(int(only.sum()))
        return whole(*args, only=only, **kw)

    monkeypatch.setattr(quote_rank, "firm_scores", spy)
    monkeypatch.setattr(quote_rank, "_reuse_counts", Counter())

    rng = random.Random(20261125)
    _random_registry(rng, admin)
    session.commit()
    shipments = [Shipment("YANTIAN", "export", {"20": 2, "40HQ": 1}, bills=2),
                 Shipment("YANTIAN", "import", {"40": 1}, storage_days=12),
                 Shipment("SHEKOU", "import", {"40HQ": 3}, storage_days=7)]
    table = rates.rates_on(registry.today())

    def both(shipment):
        snap = snapshot.current(session)
        expected = {c: quote_rules.expected_fees(c, shipment) for c in quote_rules.categories_for(shipment)}
        args = (snap, shipment, registry.today(), table, expected, 3)
        reused, fresh = quote_rank.rank_firms(*args), quote_rank.rank_firms(*args, reuse=False)
        return (reused.counts, reused.positions.tolist()), (fresh.counts, fresh.positions.tolist())

    for shipment in shipments:  # figures held for every shipment
        reused, fresh = both(shipment)
        assert reused == fresh
    for step in range(18):
        random_change(session, rng, admin, step)
        for shipment in shipments:
            reused, fresh = both(shipment)
            assert reused == fresh, (step, shipment)
    assert any(counts for counts, _ in (both(s)[1] for s in shipments))
    # The updates took the firm-by-firm path, for a firm or two each, not a full recompute.
    assert len(partial) >= 20 and max(partial) <= 2
    # And the selection was kept where the changed firms stayed off the page, and made
    # again where they were on it or got there: both paths, each equal to ranking afresh.
    assert quote_rank._reuse_counts["selection kept"] >= 5
    assert quote_rank._reuse_counts["selected again"] >= 5
