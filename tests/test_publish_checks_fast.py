"""The publish-time peer check (services/peers.py: statistics from the snapshot) finds
exactly what judging every live item of the families finds — on a seeded registry with
several families, ports, currencies (one without a rate), items naming no port,
withdrawals, future-dated versions and changes dated before a pending one — committed
or still in the publishing transaction."""
import json
import random
from datetime import timedelta

import numpy as np
import pytest

from feereg.services import anomaly_rules, checks, peers, registry
from feereg.services.anomaly_rules import Entry

from .factories import item_values, make_firm, make_user, publish

PORTS = ("YANTIAN", "SHEKOU", "CHIWAN", "MAWAN")
FAMILIES = (
    dict(fee_type="BOOKING", name_zh="订舱费", unit="per_container", base=150),
    dict(fee_type="DOC", name_zh="文件费", unit="per_bl", base=450),
    dict(fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20", base=800),
    dict(fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="40", base=1200),
)
#: HKD has no rate here: such items are neither judged nor counted.
RATES = [{"from": "2020-01-01", "rates": {"CNY": "1", "USD": "7.12"}}]


def test_stats_from_sorted_columns_are_the_rules_stats_float_for_float():
    rng = random.Random(7)
    for size in list(range(1, 40)) + [101, 1000]:
        values = [round(rng.lognormvariate(5, 0.8), 2) for _ in range(size)]
        values += values[: size // 5]  # ties
        expected = anomaly_rules.peer_stats(values)
        assert peers.stats_sorted(np.sort(np.array(values, dtype=np.float64))) == expected


def _values(rng, family, outlier=False):
    values = {k: v for k, v in family.items() if k != "base"}
    amount = family["base"] * rng.uniform(0.7, 1.4) * (rng.choice((4, 6, 10)) if outlier else 1)
    currency = rng.choices(("CNY", "USD", "HKD"), (8, 2, 1))[0]
    if currency == "USD":
        amount /= 7.12
    ports = ";".join(sorted(rng.sample(PORTS, rng.randint(1, 3)))) if rng.random() < 0.75 else ""
    return {**values, "amount": f"{amount:.2f}", "currency": currency, "ports": ports}


def _republish(session, item, actor, effective, values):
    registry.update_draft(session, item, item_values(**values), actor, None)
    registry.publish_item(session, item, actor, effective, allow_backdate=True)


def _seed(session, rng):
    admin = make_user("admin")
    firms = [make_firm("forwarder", ports=rng.sample(PORTS, rng.randint(1, 3))) for _ in range(14)]
    items = []
    for n in range(110):
        family = FAMILIES[n % len(FAMILIES)]
        item = publish(rng.choice(firms), admin, registry.today() - timedelta(days=rng.randint(0, 300)),
                       **_values(rng, family, outlier=rng.random() < 0.12))
        items.append((item, family))
        if n % 25 == 24:
            session.commit()
    session.commit()
    return admin, items


def _mutate(session, rng, admin, items, count):
    today = registry.today()
    for item, family in rng.sample(items, count):
        session.refresh(item)
        roll = rng.random()
        if item.status != "published":
            _republish(session, item, admin, today + timedelta(days=rng.randint(0, 20)), _values(rng, family))
        elif roll < 0.25:  # a change for later, then one dated before it (the newest is not the open one)
            _republish(session, item, admin, today + timedelta(days=60), _values(rng, family))
            _republish(session, item, admin, today + timedelta(days=rng.randint(0, 30)), _values(rng, family, True))
        elif roll < 0.4:  # a change for later, then a withdrawal dated before it
            _republish(session, item, admin, today + timedelta(days=50), _values(rng, family))
            registry.withdraw_item(session, item, admin, today + timedelta(days=rng.randint(0, 20)))
        elif roll < 0.55:
            registry.withdraw_item(session, item, admin, today)
        elif roll < 0.7:  # into another family (leaves its own)
            _republish(session, item, admin, today, _values(rng, rng.choice(FAMILIES)))
        elif roll < 0.8:  # backdated
            _republish(session, item, admin, today - timedelta(days=rng.randint(1, 400)), _values(rng, family))
        else:
            _republish(session, item, admin, today + timedelta(days=rng.randint(0, 90)),
                       _values(rng, family, outlier=rng.random() < 0.3))


def _reference(session, ctx, families):
    """What judging every live item of the families finds (the full scan's way)."""
    firms = checks._firms(session)
    live = []
    for latest, _previous in checks._walk(session):
        if latest.kind == "publish" and (latest.fee_type_code, latest.unit, latest.container_size,
                                         latest.cargo_scope) in families:
            category, ports = firms.get(latest.firm_id, ("", ()))
            live.append(Entry(latest, None, category, ports))
    return checks._peer_findings(live, ctx), {e.item_id: e.version_id for e in live}


def _fast(session, ctx, families):
    changed = session.info.get(checks._CHANGED_KEY, set())
    firms = checks._firms(session)
    live = []
    for latest, _previous in checks._walk_items(session, changed):
        if latest.kind == "publish":
            category, ports = firms.get(latest.firm_id, ("", ()))
            live.append(Entry(latest, None, category, ports))
    return checks._peer_check(session, ctx, families, set(changed), live)


def _comparable(findings):
    return sorted((f.item_id, f.version_id, f.subject, json.dumps(f.evidence, sort_keys=True)) for f in findings)


def _assert_same(session, all_items):
    ctx = checks.context(session)
    families = {(f["fee_type"], f["unit"], f.get("container_size", ""), "") for f in FAMILIES}
    expected, expected_members = _reference(session, ctx, families)
    found, members = _fast(session, ctx, families)
    assert _comparable(found) == _comparable(expected)
    assert members(all_items) == expected_members
    return expected


@pytest.fixture
def seeded(app, session):
    app.config["EXCHANGE_RATES"] = RATES
    rng = random.Random(20261123)
    admin, items = _seed(session, rng)
    return rng, admin, items


def test_the_snapshot_path_finds_what_every_live_item_finds(session, seeded):
    rng, admin, items = seeded
    all_items = {item.id for item, _ in items}
    assert _assert_same(session, all_items), "the seed plants outliers"
    for round_ in range(4):
        _mutate(session, rng, admin, items, 12)
        _assert_same(session, all_items)  # within the publishing transaction
        session.commit()
        _assert_same(session, all_items)  # committed: the snapshot holds them


def test_flags_kept_at_publish_are_the_full_scans(session, seeded):
    rng, admin, items = seeded
    for _ in range(3):
        _mutate(session, rng, admin, items, 15)
        session.commit()
    report = checks.full_scan(session)
    session.commit()
    assert report.found["PEER_OUTLIER"] > 0
    assert (report.raised, report.reopened, report.resolved) == (0, 0, 0)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_flag_raised_meanwhile_by_another_transaction_is_taken_not_inserted_twice(session):
    """Two publishes committing at once can both find one peer newly out of line: the one
    that commits second takes the other's flag (it waits on the unique fingerprint, then
    finds it) instead of failing on the unique index. SQLite has one writer at a time."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from feereg.extensions import db
    from feereg.models import Flag

    firm = make_firm("shipping_line")
    session.commit()

    def new_flag() -> Flag:
        return Flag(rule="PEER_OUTLIER", severity="medium", status="open", firm_id=firm.id,
                    subject="item:1", fingerprint="PEER_OUTLIER|race|v1", evidence={"ratio": "4.0"})

    first, second = new_flag(), new_flag()
    with Session(db.engine) as other:  # the other publish, committed first
        stored, taken = checks._insert_flags(other, [first])
        assert taken == set() and stored[id(first)].id is not None
        other.commit()
        first_id = other.scalar(select(Flag.id).where(Flag.fingerprint == first.fingerprint))
    # This one raises that flag and one of its own, in one batch.
    own = new_flag()
    own.fingerprint, own.subject = "PEER_OUTLIER|race|v2", "item:2"
    stored, taken = checks._insert_flags(session, [own, second])
    assert taken == {second.fingerprint}
    assert stored[id(second)].id == first_id and stored[id(own)].id not in (None, first_id)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Flag)) == 2


def test_a_flag_taken_and_moved_on_meanwhile_is_found_by_its_subject(session):
    """The flag another transaction raised first may have followed its item to a newer
    version (a third transaction moved its fingerprint) before this one looks it up: it is
    found by its rule and subject. (Seen in CI: a KeyError under many publishers at once.)"""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from feereg.extensions import db
    from feereg.models import Flag

    firm = make_firm("shipping_line")
    session.commit()

    def new_flag(version: int) -> Flag:
        return Flag(rule="PEER_OUTLIER", severity="medium", status="open", firm_id=firm.id,
                    subject="item:7", fingerprint=f"PEER_OUTLIER|item:7|v{version}", evidence={"ratio": "4.0"})

    with Session(db.engine) as other:  # raised by another publish, then moved on by a third
        other.add(new_flag(1))
        other.commit()
        moved = other.scalar(select(Flag).where(Flag.fingerprint == "PEER_OUTLIER|item:7|v1"))
        moved.fingerprint = "PEER_OUTLIER|item:7|v2"
        other.commit()
        moved_id = moved.id
    late = new_flag(1)
    found = checks._taken_flags(session, [late])
    assert found[late.fingerprint].id == moved_id
    assert found[late.fingerprint].fingerprint == "PEER_OUTLIER|item:7|v2"
