"""Firm compliance: the disclosure score and what lowers it, and the case steps."""
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from feereg.models import AuditEvent, ComplianceCase
from feereg.models.types import utcnow
from feereg.services import checks, compliance, registry
from feereg.services.errors import InvalidInput, PermissionDenied, ServiceError

from .audit_factories import make_flag
from .conftest import login, post_form
from .factories import make_firm, make_user, publish


@pytest.fixture
def world(session):
    firm = make_firm(category="shipping_agent")
    pub = make_user("publisher", firm)
    w = {"firm": firm, "pub": pub, "regulator": make_user("regulator"), "other": make_firm()}
    session.commit()
    return w


def parts(score):
    return {d.part: d.points for d in score.deductions}


def test_a_complete_current_schedule_without_flags_scores_100(session, world):
    publish(world["firm"], world["pub"])
    score = compliance.score(session, world["firm"])
    assert score.points == 100 and score.deductions == [] and score.items == 1


def test_no_schedule_loses_completeness_and_currency(session, world):
    score = compliance.score(session, world["firm"])
    assert score.points == 30 and parts(score) == {"completeness": 70}


def test_incomplete_items_lower_completeness_in_proportion(session, world):
    publish(world["firm"], world["pub"])
    publish(world["firm"], world["pub"], fee_type="EIR", name_zh="设备交接单费", unit="per_container",
            service_content="详见附件")
    score = compliance.score(session, world["firm"])
    assert parts(score) == {"completeness": 20} and score.points == 80


def test_items_not_republished_after_a_notice_lower_currency(session, world):
    publish(world["firm"], world["pub"], effective_from=registry.today() - timedelta(days=60))
    checks.record_policy_notice(session, {"kind": "cap", "fee_type_code": "DOC", "amount": "900",
                                          "effective_from": registry.today() + timedelta(days=1)}, world["regulator"])
    assert "currency" not in parts(compliance.score(session, world["firm"]))  # not in force yet
    within_grace = registry.today() + timedelta(days=31)
    assert "currency" not in parts(compliance.score(session, world["firm"], on=within_grace))
    after_grace = registry.today() + timedelta(days=32)
    assert parts(compliance.score(session, world["firm"], on=after_grace)) == {"currency": 30}


def test_confirmed_flags_of_the_last_year_lower_the_score(session, world):
    publish(world["firm"], world["pub"])
    make_flag(world["firm"], "OVER_CAP", "high", status="confirmed", decided_at=utcnow())
    make_flag(world["firm"], "STEEP_RISE", "medium", status="confirmed", decided_at=utcnow())
    make_flag(world["firm"], "DUPLICATE", "medium", status="open")
    make_flag(world["firm"], "ABOLISHED", "high", status="confirmed", decided_at=utcnow() - timedelta(days=400))
    make_flag(world["other"], "ABOLISHED", "high", status="confirmed", decided_at=utcnow())
    assert parts(compliance.score(session, world["firm"])) == {"flags": 15}


def test_case_warning_rectification_closed_logged_and_refusing_other_orders(session, world):
    reg, firm = world["regulator"], world["firm"]
    case = compliance.open_case(session, firm, "公示不完整", reg)
    with pytest.raises(ServiceError):
        compliance.open_case(session, firm, "again", reg)  # one open case per firm
    with pytest.raises(InvalidInput):
        compliance.order_rectification(session, case, registry.today(), "today is no deadline", reg)
    deadline = registry.today() + timedelta(days=30)
    compliance.order_rectification(session, case, deadline, "30日内整改", reg)
    with pytest.raises(ServiceError):
        compliance.order_rectification(session, case, deadline, "twice", reg)
    with pytest.raises(PermissionDenied):
        compliance.close_case(session, case, "closing my own", world["pub"])
    compliance.close_case(session, case, "已整改", reg)
    with pytest.raises(ServiceError):
        compliance.close_case(session, case, "again", reg)
    assert [s.status for s in case.steps] == ["warning", "rectification", "closed"]
    assert case.deadline == deadline and case.closed_at is not None
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.startswith("compliance."))
                                   .order_by(AuditEvent.id)))
    assert actions == ["compliance.warning", "compliance.rectification", "compliance.close"]
    compliance.open_case(session, firm, "a new case after the closed one", reg)


def test_regulator_moves_a_firm_on_its_page_and_the_firm_sees_each_step(app, session, world):
    publish(world["firm"], world["pub"])
    session.commit()
    code = world["firm"].credit_code
    url = f"/regulator/firms/{code}/compliance"
    regulator = app.test_client()
    login(regulator, world["regulator"].email)
    assert regulator.post(url, data={"step": "warning", "text": "x"}).status_code == 400  # CSRF
    assert post_form(regulator, url, {"step": "warning", "text": "请补充服务内容"}).status_code == 302
    deadline = (registry.today() + timedelta(days=20)).isoformat()
    assert post_form(regulator, url, {"step": "rectification", "text": "限期整改", "deadline": deadline}).status_code == 302
    case = session.scalar(select(ComplianceCase))
    assert case.status == "rectification" and case.deadline.isoformat() == deadline
    assert code in regulator.get("/regulator/compliance").get_data(as_text=True)
    firm_client = app.test_client()
    login(firm_client, world["pub"].email)
    page = firm_client.get("/publisher/audit").get_data(as_text=True)
    assert "请补充服务内容" in page and "限期整改" in page and deadline in page
    assert firm_client.get(url).status_code == 403


def test_the_public_firm_page_shows_the_score_and_what_lowers_it(client, session, world):
    publish(world["firm"], world["pub"], service_content="详见附件")
    session.commit()
    page = client.get(f"/firms/{world['firm'].credit_code}?lang=en").get_data(as_text=True)
    assert "Disclosure score" in page and "<strong>60</strong>" in page and "Completeness" in page
