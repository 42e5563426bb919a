"""The anomaly rules: for each, one case that must flag and a close one that must not;
then the flags' life: raised at publish, never duplicated, resolved when fixed, re-checked
when policy changes, dated caps."""
from datetime import date

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from feereg.models import AuditEvent, Complaint, Flag
from feereg.services import anomaly_rules, checks, registry
from feereg.services.errors import InvalidInput, PermissionDenied

from .factories import D, days, item_values, make_firm, make_user, publish


def open_flags(session, rule=None, item=None):
    stmt = select(Flag).where(Flag.status == "open")
    if rule:
        stmt = stmt.where(Flag.rule == rule)
    if item is not None:
        stmt = stmt.where(Flag.item_id == item.id)
    return list(session.scalars(stmt.order_by(Flag.id)))


def rules_on(session, item):
    return {flag.rule for flag in open_flags(session, item=item)}


def republish(session, item, actor, effective_from, **overrides):
    values = item_values(**overrides)
    registry.update_draft(session, item, values, actor, None)
    registry.publish_item(session, item, actor, effective_from, allow_backdate=True)
    return item


def firm_and_user(category="forwarder", ports=("YANTIAN",)):
    firm = make_firm(category, ports=ports)
    return firm, make_user("publisher", firm)


@pytest.fixture
def regulator(app):
    return make_user("regulator")


def notice(session, regulator, **values):
    values.setdefault("currency", "CNY")
    values.setdefault("reference", "交水规〔2019〕2号")
    return checks.record_policy_notice(session, values, regulator)


TUG = dict(fee_type="TUG", name_zh="拖轮费", unit="per_call", pricing_basis="government_guided",
           legal_basis="《港口收费计费办法》", service_content="拖轮协助靠离泊")
CPD = dict(fee_type="CPD", name_zh="货物港务费", unit="per_ton", pricing_basis="government_set",
           legal_basis="《港口收费计费办法》", service_content="代收货物港务费")


# --- each rule: must flag / must not -----------------------------------------------------

def test_abolished_fee_type_is_flagged_and_its_successor_is_not(session):
    firm, user = firm_and_user("offport_yard")
    old = publish(firm, user, fee_type="OLDSTOR", name_zh="堆存保管费", unit="per_container_day",
                  container_size="20", amount="25", service_content="堆存")
    new = publish(firm, user, fee_type="STORAGE", name_zh="库场使用费", unit="per_container_day",
                  container_size="20", amount="25", service_content="堆存")
    assert rules_on(session, old) == {"ABOLISHED"}
    assert rules_on(session, new) == set()
    flag = open_flags(session, "ABOLISHED", old)[0]
    assert flag.evidence["abolished_from"] == "2019-04-01" and flag.evidence["replaced_by"] == "STORAGE"
    assert flag.severity == "high" and "2019-04-01" in flag.explanation


def test_abolition_by_policy_notice_rechecks_live_items_at_once(session, regulator):
    firm, user = firm_and_user("shipping_agent")
    eir = publish(firm, user, fee_type="EIR", name_zh="设备交接单费", unit="per_container", amount="80")
    seal = publish(firm, user, fee_type="SEAL", name_zh="铅封费", unit="per_container", amount="50")
    assert open_flags(session) == []
    _, report = notice(session, regulator, kind="abolish", fee_type_code="EIR", effective_from=days(-1))
    assert rules_on(session, eir) == {"ABOLISHED"} and rules_on(session, seal) == set()
    assert report.raised == 1
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "policy.notice")) == 1


def test_over_cap_and_at_cap(session, regulator):
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="9500", effective_from=date(2019, 4, 1))
    firm, user = firm_and_user("terminal")
    above = publish(firm, user, amount="9600", **TUG)
    at_cap = publish(make_firm("terminal"), make_user("admin"), amount="9500", **TUG)
    assert rules_on(session, above) == {"OVER_CAP"}
    assert rules_on(session, at_cap) == set()
    evidence = open_flags(session, "OVER_CAP")[0].evidence
    assert (evidence["cap"], evidence["amount"], evidence["ratio"]) == ("9500.00", "9600.00", "1.01")


def test_caps_are_dated_an_item_is_judged_by_the_cap_in_force_on_its_effective_date(session, regulator):
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="9000", effective_from=days(-100))
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="8000", effective_from=days(60))
    admin = make_user("admin")
    before = publish(make_firm("terminal"), admin, effective_from=days(45), amount="8500", **TUG)
    after = publish(make_firm("terminal"), admin, effective_from=days(61), amount="8500", **TUG)
    assert rules_on(session, before) == set()
    assert rules_on(session, after) == {"OVER_CAP"}
    assert open_flags(session, "OVER_CAP")[0].evidence["cap"] == "8000.00"
    # A cap is judged by its scope too: a narrower cap for another port does not apply.
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="100", port="SHEKOU",
           effective_from=days(-1))
    assert rules_on(session, before) == set()


def test_markup_on_a_pass_through_fee_and_the_official_rate(session, regulator):
    notice(session, regulator, kind="official_rate", fee_type_code="CPD", amount="5.60",
           effective_from=date(2019, 4, 1))
    firm, user = firm_and_user("terminal")
    marked_up = publish(firm, user, amount="6.00", **CPD)
    official = publish(make_firm("terminal"), make_user("admin"), amount="5.60", **CPD)
    assert rules_on(session, marked_up) == {"MARKUP"}
    assert rules_on(session, official) == set()
    assert open_flags(session, "MARKUP")[0].evidence["difference"] == "0.40"


def _booking_peers(n, amount="150", ports=("YANTIAN",)):
    admin = make_user("admin")
    return [publish(make_firm("forwarder", ports=ports), admin, fee_type="BOOKING", name_zh="订舱费",
                    unit="per_container", amount=amount, ports=";".join(ports)) for _ in range(n)]


def test_peer_outlier_far_above_the_port_median_and_a_close_one(session):
    _booking_peers(6)
    admin = make_user("admin")
    far = publish(make_firm("forwarder"), admin, fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                  amount="600")
    close = publish(make_firm("forwarder"), admin, fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                    amount="420")
    assert rules_on(session, far) == {"PEER_OUTLIER"}
    assert rules_on(session, close) == set()
    evidence = open_flags(session, "PEER_OUTLIER")[0].evidence
    assert evidence["median"] == "150.00" and evidence["port"] == "YANTIAN" and float(evidence["ratio"]) == 4.0
    assert evidence["peers"] == 7


def test_peer_outlier_needs_the_minimum_peer_count_and_converts_currencies(session, app):
    _booking_peers(4)
    admin = make_user("admin")
    lonely = publish(make_firm("forwarder"), admin, fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                     amount="900")
    assert rules_on(session, lonely) == set()  # 4 peers: below PEER_MIN_COUNT
    _booking_peers(1)
    checks.full_scan(session)
    assert rules_on(session, lonely) == {"PEER_OUTLIER"}
    # 100 USD is about 700 CNY: an outlier; 20 USD (about 140 CNY) is not.
    usd = publish(make_firm("forwarder"), admin, fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                  amount="100", currency="USD")
    usd_ok = publish(make_firm("forwarder"), admin, fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                     amount="20", currency="USD")
    assert rules_on(session, usd) == {"PEER_OUTLIER"} and rules_on(session, usd_ok) == set()


def test_a_peer_change_can_resolve_another_items_outlier_flag(session):
    peers = _booking_peers(5)
    admin = make_user("admin")
    item = publish(make_firm("forwarder"), admin, fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                   amount="500")
    assert rules_on(session, item) == {"PEER_OUTLIER"}
    for peer in peers:  # the market moves up; the item did not change
        republish(session, peer, admin, days(40), fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                  amount="160")
        republish(session, peer, admin, days(80), fee_type="BOOKING", name_zh="订舱费", unit="per_container",
                  amount="200")
    assert rules_on(session, item) == set()
    assert session.scalar(select(Flag.status).where(Flag.item_id == item.id)) == "resolved"


def test_no_notice_for_a_rise_effective_too_soon_and_enough_notice(session):
    firm, user = firm_and_user("shipping_line")
    soon = publish(firm, user, effective_from=days(-200), amount="450")
    republish(session, soon, user, days(5), amount="500")
    other = publish(firm, user, effective_from=days(-200), fee_type="TLX", name_zh="电放费", amount="400")
    republish(session, other, user, days(30), fee_type="TLX", name_zh="电放费", amount="440")
    assert rules_on(session, soon) == {"NO_NOTICE"}
    assert rules_on(session, other) == set()
    evidence = open_flags(session, "NO_NOTICE")[0].evidence
    assert (evidence["notice_days"], evidence["required_days"], evidence["old"], evidence["new"]) == (
        5, 30, "450.00", "500.00")


def test_a_cut_needs_no_notice(session):
    firm, user = firm_and_user("shipping_line")
    item = publish(firm, user, effective_from=days(-200), amount="450")
    republish(session, item, user, days(1), amount="400")
    assert rules_on(session, item) == set()


def test_steep_rise_and_a_rise_just_under_the_threshold(session):
    firm, user = firm_and_user("shipping_line")
    steep = publish(firm, user, effective_from=days(-200), fee_type="AMD", name_zh="改单费", amount="300")
    republish(session, steep, user, days(40), fee_type="AMD", name_zh="改单费", amount="600")
    modest = publish(firm, user, effective_from=days(-200), fee_type="TLX", name_zh="电放费", amount="300")
    republish(session, modest, user, days(40), fee_type="TLX", name_zh="电放费", amount="450")
    assert rules_on(session, steep) == {"STEEP_RISE"}
    assert rules_on(session, modest) == set()  # +50 % exactly is not more than 50 %
    assert open_flags(session, "STEEP_RISE")[0].evidence["percent"] == "100.0"


def test_duplicate_fee_under_two_names_and_two_directions(session):
    firm, user = firm_and_user("shipping_agent")
    first = publish(firm, user, name_zh="文件费", direction="export")
    twin = publish(firm, user, name_zh="单证费", direction="export")
    other_way = publish(firm, user, name_zh="进口文件费", direction="import")
    assert rules_on(session, twin) == {"DUPLICATE"}
    assert rules_on(session, first) == set() and rules_on(session, other_way) == set()
    evidence = open_flags(session, "DUPLICATE")[0].evidence
    assert evidence["other_item_id"] == first.id and evidence["other_name"] == "文件费"


def test_duplicate_at_different_ports_is_not_one(session):
    firm, user = firm_and_user("shipping_agent", ports=("YANTIAN", "SHEKOU"))
    publish(firm, user, name_zh="文件费", ports="YANTIAN")
    other = publish(firm, user, name_zh="单证费", ports="SHEKOU")
    assert rules_on(session, other) == set()


def test_misplaced_fee_for_the_firm_category_and_a_permitted_one(session):
    yard, yard_user = firm_and_user("offport_yard")
    forwarder, forwarder_user = firm_and_user("forwarder")
    wrong = publish(yard, yard_user, fee_type="THC", name_zh="码头操作费", unit="per_container",
                    container_size="20", amount="1050")
    right = publish(forwarder, forwarder_user, fee_type="THC", name_zh="码头操作费", unit="per_container",
                    container_size="20", amount="1050")
    assert rules_on(session, wrong) == {"MISPLACED"}
    assert rules_on(session, right) == set()
    assert "offport_yard" in open_flags(session, "MISPLACED")[0].explanation


def test_incomplete_vague_or_missing_disclosure_and_a_complete_one(session):
    firm, user = firm_and_user("terminal")
    vague = publish(firm, user, fee_type="PHC", name_zh="港口作业包干费", unit="per_container",
                    container_size="20", amount="780", service_content="详见附件")
    no_basis = publish(firm, user, amount="5.60", **{**CPD, "legal_basis": ""})
    complete = publish(firm, user, fee_type="PHC", name_zh="港口作业包干费", unit="per_container",
                       container_size="40", amount="1180", service_content="码头装卸及堆场作业")
    assert rules_on(session, vague) == {"INCOMPLETE"}
    assert rules_on(session, no_basis) == {"INCOMPLETE"}
    assert rules_on(session, complete) == set()
    assert open_flags(session, "INCOMPLETE", no_basis)[0].evidence["missing"] == ["legal_basis"]


def _complaint(session, firm, fee_name, fee_type_code, amount):
    complaint = Complaint(firm_id=firm.id, fee_name=fee_name, fee_type_code=fee_type_code, amount=D(amount),
                          currency="CNY", charged_on=registry.today(), description="发票 No. 123")
    session.add(complaint)
    session.flush()
    return complaint


def test_undisclosed_charge_from_a_complaint_and_one_as_published(session):
    firm, user = firm_and_user("shipping_agent")
    publish(firm, user, effective_from=days(-10), amount="450")
    missing = _complaint(session, firm, "换单费", "DO", "300")
    above = _complaint(session, firm, "文件费", "DOC", "500")
    as_published = _complaint(session, firm, "文件费", "DOC", "450")
    flag = checks.raise_undisclosed(session, missing)
    assert flag.rule == "UNDISCLOSED" and flag.item_id is None and flag.complaint_id == missing.id
    assert "not in the firm's published schedule" in flag.explanation
    assert checks.raise_undisclosed(session, missing) is flag  # idempotent
    flag_above = checks.raise_undisclosed(session, above)
    assert flag_above.evidence["published"] == "450.00" and flag_above.evidence["variant"] == "above"
    assert checks.raise_undisclosed(session, as_published) is None
    assert len(open_flags(session, "UNDISCLOSED")) == 2
    # A full scan leaves complaint flags alone: only a regulator closes them.
    checks.full_scan(session)
    assert len(open_flags(session, "UNDISCLOSED")) == 2


# --- the flags' life ----------------------------------------------------------------------

def test_publish_flags_at_once_and_rescans_never_duplicate(session, regulator):
    firm, user = firm_and_user("offport_yard")
    publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
            amount="1050", service_content="详见附件")
    assert {f.rule for f in open_flags(session)} == {"MISPLACED", "INCOMPLETE"}
    before = session.scalar(select(func.count()).select_from(Flag))
    first = checks.full_scan(session)
    second = checks.full_scan(session)
    assert session.scalar(select(func.count()).select_from(Flag)) == before == 2
    assert (first.raised, second.raised, second.resolved, second.reopened) == (0, 0, 0, 0)
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "flag.raise")) == 2


def test_a_fixed_item_has_its_flag_resolved_not_deleted(session):
    firm, user = firm_and_user("terminal")
    item = publish(firm, user, effective_from=days(-10), fee_type="PHC", name_zh="港口作业包干费",
                   unit="per_container", container_size="20", amount="780", service_content="详见附件")
    flag = open_flags(session, "INCOMPLETE", item)[0]
    republish(session, item, user, days(1), fee_type="PHC", name_zh="港口作业包干费", unit="per_container",
              container_size="20", amount="780", service_content="码头装卸及堆场作业")
    session.refresh(flag)
    assert flag.status == "resolved" and flag.resolved_at is not None
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "flag.resolve", AuditEvent.subject_id == flag.id)) == 1
    # Broken again: the same flag would not fit (another version), so a new one is raised.
    republish(session, item, user, days(2), fee_type="PHC", name_zh="港口作业包干费", unit="per_container",
              container_size="20", amount="780", service_content="面议")
    assert len(open_flags(session, "INCOMPLETE", item)) == 1


def test_an_open_flag_follows_the_item_to_a_new_version_still_breaking_the_rule(session):
    firm, user = firm_and_user("offport_yard")
    item = publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
                   amount="1050")
    flag = open_flags(session, "MISPLACED", item)[0]
    republish(session, item, user, days(40), fee_type="THC", name_zh="码头操作费", unit="per_container",
              container_size="20", amount="1060")
    flags = open_flags(session, "MISPLACED", item)
    assert flags == [flag] and flag.version_id == item.versions[-1].id


def test_a_dismissed_flag_is_not_raised_again_by_a_scan(session):
    firm, user = firm_and_user("offport_yard")
    item = publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
                   amount="1050")
    flag = open_flags(session, "MISPLACED", item)[0]
    flag.status = "dismissed"  # the regulator workspace's decision (another service)
    session.flush()
    report = checks.full_scan(session)
    assert report.raised == 0 and open_flags(session) == []


def test_a_cap_raised_by_a_later_notice_resolves_and_a_lower_one_reopens(session, regulator):
    admin = make_user("admin")
    item = publish(make_firm("terminal"), admin, effective_from=days(-5), amount="9000", **TUG)
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="8000", effective_from=days(-30))
    flag = open_flags(session, "OVER_CAP", item)[0]
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="9500", effective_from=days(-20))
    assert flag.status == "resolved"
    notice(session, regulator, kind="cap", fee_type_code="TUG", amount="8500", effective_from=days(-10))
    assert flag.status == "open" and flag.evidence["cap"] == "8500.00"
    assert session.scalar(select(func.count()).select_from(Flag)) == 1


def test_withdrawing_an_item_resolves_its_flags(session):
    firm, user = firm_and_user("offport_yard")
    item = publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
                   amount="1050")
    registry.withdraw_item(session, item, user, days(1), allow_backdate=True)
    assert open_flags(session) == []
    assert session.scalar(select(Flag.status)) == "resolved"


def test_policy_notices_are_validated_and_for_regulators_only(session, regulator):
    publisher = make_user("publisher", make_firm())
    with pytest.raises(PermissionDenied):
        checks.record_policy_notice(session, {"kind": "cap", "fee_type_code": "TUG", "amount": "1",
                                              "effective_from": days(1)}, publisher)
    with pytest.raises(InvalidInput) as raised:
        checks.record_policy_notice(session, {"kind": "cap", "fee_type_code": "NOPE",
                                              "effective_from": "not a date"}, regulator)
    assert len(raised.value.errors) == 3


def test_explanations_are_shown_in_the_readers_language(session):
    firm, user = firm_and_user("offport_yard")
    publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
            amount="1050")
    flag = open_flags(session, "MISPLACED")[0]
    assert "offport_yard" in flag.explanation  # stored with the codes
    with force_locale("zh"):
        text = anomaly_rules.describe(flag)
    assert "港外堆场" in text and "货运代理、船舶代理、船公司" in text and "offport_yard" not in text
    with force_locale("en"):
        text = anomaly_rules.describe(flag)
    assert text == ("THC (码头操作费) is charged by a firm of the category Off-port container yard; only these "
                    "categories may charge it: Freight forwarder, Shipping agent, Shipping line.")


def test_cli_scan_reports_what_it_found(runner, session):
    firm, user = firm_and_user("offport_yard")
    publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
            amount="1050")
    session.commit()
    result = runner.invoke(args=["scan"])
    assert result.exit_code == 0, result.output
    assert "MISPLACED 1" in result.output and "0 raised" in result.output


def test_a_change_flag_stays_with_its_version_when_a_later_change_is_regular(session):
    firm, user = firm_and_user("shipping_line")
    item = publish(firm, user, effective_from=days(-200), amount="450")
    republish(session, item, user, days(5), amount="500")
    flag = open_flags(session, "NO_NOTICE", item)[0]
    republish(session, item, user, days(60), amount="520")
    checks.full_scan(session)
    # The rise without notice happened; a later, regular change does not undo it.
    assert open_flags(session, "NO_NOTICE", item) == [flag] and flag.version_id == item.versions[1].id


def test_a_state_flag_resolves_when_the_item_changes_type(session):
    firm, user = firm_and_user("offport_yard")
    item = publish(firm, user, fee_type="THC", name_zh="码头操作费", unit="per_container", container_size="20",
                   amount="1050")
    republish(session, item, user, days(40), fee_type="LOLO", name_zh="吊箱费", unit="per_container",
              container_size="20", amount="180")
    assert open_flags(session, item=item) == []
