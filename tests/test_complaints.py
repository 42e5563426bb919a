"""Complaints closed in a loop: filing (UNDISCLOSED), the state machine, who sees and does what."""
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from feereg import create_app
from feereg.extensions import db
from feereg.models import AuditEvent, Complaint, Flag
from feereg.services import complaints, oversight, registry
from feereg.services.complaints import IllegalTransition
from feereg.services.errors import InvalidInput, PermissionDenied

from .conftest import _test_config, login, post_form
from .factories import make_firm, make_user, publish


@pytest.fixture
def world(session):
    firm_a, firm_b = make_firm(category="shipping_agent"), make_firm(category="shipping_agent")
    pub_a, pub_b = make_user("publisher", firm_a), make_user("publisher", firm_b)
    doc = publish(firm_a, pub_a, effective_from=registry.today() - timedelta(days=30))  # 文件费 450 per B/L
    world = {"firm_a": firm_a, "firm_b": firm_b, "pub_a": pub_a, "pub_b": pub_b, "doc": doc,
             "regulator": make_user("regulator")}
    session.commit()
    return world


def file(session, firm, fee_name="换单费", amount="300", **kw):
    values = {"firm": firm, "fee_name": fee_name, "amount": amount, "currency": "CNY",
              "charged_on": registry.today() - timedelta(days=2), "description": "发票 No. 123", **kw}
    return complaints.file_complaint(session, values)


def test_a_charge_not_in_the_schedule_raises_undisclosed(session, world):
    complaint, flag = file(session, world["firm_a"], fee_name="换单费")
    assert complaint.fee_type_code == "DO" and complaint.status == "received"
    assert flag is not None and flag.rule == "UNDISCLOSED" and flag.status == "open"
    assert flag.complaint_id == complaint.id and flag.firm_id == world["firm_a"].id
    assert flag.evidence["fee_name"] == "换单费" and flag.evidence["variant"] == ""
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "complaint.file")).subject_id == complaint.id


def test_a_charge_above_the_schedule_matched_through_an_alias_raises_undisclosed(session, world):
    _, flag = file(session, world["firm_a"], fee_name="单证费", amount="500")  # alias of DOC, published at 450
    assert flag.evidence["variant"] == "above" and flag.evidence["published"] == "450.00"
    assert flag.item_id == world["doc"].id


@pytest.mark.parametrize("amount", ["450", "400"])
def test_a_charge_as_published_or_below_raises_nothing(session, world, amount):
    _, flag = file(session, world["firm_a"], fee_name="DOC fee", amount=amount)
    assert flag is None
    assert session.scalar(select(Flag).where(Flag.rule == "UNDISCLOSED")) is None


def test_a_charge_before_the_item_was_in_force_is_undisclosed(session, world):
    # The schedule on the charge date, not today's: the item took effect 30 days ago.
    _, flag = file(session, world["firm_a"], fee_name="文件费", amount="450",
                   charged_on=registry.today() - timedelta(days=40))
    assert flag is not None and flag.evidence["variant"] == ""


def test_filing_validates(session, world):
    with pytest.raises(InvalidInput):
        file(session, world["firm_a"], amount="0")
    with pytest.raises(InvalidInput):
        file(session, world["firm_a"], charged_on=registry.today() + timedelta(days=1))
    with pytest.raises(InvalidInput):  # another firm's item
        file(session, world["firm_b"], item_id=world["doc"].id)
    with pytest.raises(InvalidInput):
        complaints.file_complaint(session, {"firm_text": "no such firm", "fee_name": "x", "amount": "1",
                                            "charged_on": registry.today(), "description": "x"})


def test_the_loop_forward_answer_close_with_timestamps_and_audit(session, world):
    complaint, _ = file(session, world["firm_a"])
    reg, pub = world["regulator"], world["pub_a"]
    assert complaints.allowed_steps(complaint, reg) == ["forward", "close"]
    assert complaints.allowed_steps(complaint, pub) == []
    complaints.forward(session, complaint, reg)
    assert complaint.status == "forwarded" and complaint.forwarded_at is not None
    assert complaints.allowed_steps(complaint, pub) == ["answer"]
    complaints.answer(session, complaint, pub, "已退还差价")
    assert complaint.status == "answered" and complaint.answered_at >= complaint.forwarded_at
    complaints.close(session, complaint, reg, "企业已整改并退款")
    assert complaint.status == "closed" and complaint.closed_at >= complaint.answered_at
    assert complaint.firm_answer == "已退还差价" and complaint.regulator_conclusion == "企业已整改并退款"
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.subject_type == "Complaint")
                                   .order_by(AuditEvent.id)))
    assert actions == ["complaint.file", "complaint.forward", "complaint.answer", "complaint.close"]


def test_illegal_transitions_are_refused(session, world):
    complaint, _ = file(session, world["firm_a"])
    reg, pub = world["regulator"], world["pub_a"]
    with pytest.raises(IllegalTransition):
        complaints.answer(session, complaint, pub, "too early")  # not forwarded yet
    complaints.forward(session, complaint, reg)
    with pytest.raises(IllegalTransition):
        complaints.forward(session, complaint, reg)
    complaints.close(session, complaint, reg, "unfounded")
    for step in (lambda: complaints.close(session, complaint, reg, "again"),
                 lambda: complaints.answer(session, complaint, pub, "late"),
                 lambda: complaints.forward(session, complaint, reg)):
        with pytest.raises(IllegalTransition):
            step()
    assert complaint.status == "closed" and complaint.firm_answer == ""


def test_only_the_firm_answers_and_only_a_regulator_forwards_and_closes(session, world):
    complaint, _ = file(session, world["firm_a"])
    with pytest.raises(PermissionDenied):
        complaints.forward(session, complaint, world["pub_a"])
    complaints.forward(session, complaint, world["regulator"])
    with pytest.raises(PermissionDenied):
        complaints.answer(session, complaint, world["pub_b"], "not my firm")
    with pytest.raises(PermissionDenied):
        complaints.close(session, complaint, world["pub_a"], "closing my own")
    with pytest.raises(InvalidInput):
        complaints.close(session, complaint, world["regulator"], "  ")  # a conclusion is required
    assert complaint.status == "forwarded"


def test_open_complaints_and_median_time_to_close(session, world):
    reg = world["regulator"]
    closed = [file(session, world["firm_a"])[0] for _ in range(3)]
    file(session, world["firm_a"])
    for complaint, days in zip(closed, (1, 3, 10)):
        complaints.close(session, complaint, reg, "done")
        complaint.closed_at = complaint.received_at + timedelta(days=days)
    session.flush()
    figures = oversight.complaint_figures(session)
    assert figures.open == 1 and figures.closed == 3 and figures.median_days_to_close == 3.0


# --- pages ---------------------------------------------------------------------------------

def form_data(world, **kw):
    return {"firm": world["firm_a"].credit_code, "fee_name": "换单费", "amount": "300", "currency": "CNY",
            "charged_on": (registry.today() - timedelta(days=1)).isoformat(), "description": "invoice 7",
            "contact": "张三 138", **kw}


def test_anyone_files_a_complaint_on_the_public_form(client, session, world):
    response = post_form(client, "/complaints/new?lang=en", form_data(world))
    assert response.status_code == 200 and "Complaint received" in response.get_data(as_text=True)
    complaint = session.scalar(select(Complaint))
    assert complaint.firm_id == world["firm_a"].id and complaint.contact == "张三 138"
    assert session.scalar(select(Flag.rule).where(Flag.complaint_id == complaint.id)) == "UNDISCLOSED"


@pytest.mark.parametrize("field,value,fragment", [
    ("amount", "abc", "not an amount"), ("amount", "-5", "above zero"),
    ("charged_on", "2999-01-01", "future"), ("firm", "nobody at all", "No registered firm"),
    ("description", "", "required"),
])
def test_the_complaint_form_validates(client, session, world, field, value, fragment):
    response = post_form(client, "/complaints/new?lang=en", form_data(world, **{field: value}))
    assert response.status_code == 200 and fragment in response.get_data(as_text=True)
    assert session.scalar(select(Complaint)) is None


def test_the_complaint_form_needs_csrf(client, session, world):
    assert client.post("/complaints/new", data=form_data(world)).status_code == 400
    assert session.scalar(select(Complaint)) is None


def test_the_complaint_form_is_prefilled_from_a_link(client, world):
    page = client.get(f"/complaints/new?firm={world['firm_a'].credit_code}&fee_name=单证费&amount=500"
                      f"&charged_on=2026-01-05&item={world['doc'].id}").get_data(as_text=True)
    assert world["firm_a"].credit_code in page and "单证费" in page and 'value="2026-01-05"' in page
    assert f'value="{world["doc"].id}"' in page


def test_filing_is_rate_limited(migrated, tmp_path, world):
    app = create_app({**_test_config(migrated, tmp_path), "RATELIMIT_ENABLED": True})
    client = app.test_client()
    try:
        # Typos do not use up the allowance; filed complaints do (3 a minute).
        typos = [post_form(client, "/complaints/new", form_data(world, amount="x")).status_code for _ in range(4)]
        assert typos == [200, 200, 200, 200]
        filed = [post_form(client, "/complaints/new", form_data(world)).status_code for _ in range(4)]
        assert filed == [200, 200, 200, 429]
        assert post_form(client, "/complaints/new", form_data(world, amount="x")).status_code == 429
    finally:
        with app.app_context():  # this second app has its own connection pool
            db.engine.dispose()


def test_the_firm_sees_only_its_own_forwarded_complaints_and_answers(app, session, world):
    mine, _ = file(session, world["firm_a"], fee_name="换单费", contact="赵六 13800001111")
    triage, _ = file(session, world["firm_a"], fee_name="THC")  # not forwarded: still with the regulator
    theirs, _ = file(session, world["firm_b"], fee_name="提货单费")
    for complaint in (mine, theirs):
        complaints.forward(session, complaint, world["regulator"])
    session.commit()
    client = app.test_client()
    login(client, world["pub_a"].email)
    listing = client.get("/publisher/complaints").get_data(as_text=True)
    assert f"/publisher/complaints/{mine.id}" in listing
    assert f"/publisher/complaints/{triage.id}" not in listing and "提货单费" not in listing
    assert client.get(f"/publisher/complaints/{theirs.id}").status_code == 404
    assert client.get(f"/publisher/complaints/{triage.id}").status_code == 404
    page = client.get(f"/publisher/complaints/{mine.id}").get_data(as_text=True)
    assert "换单费" in page and "13800001111" not in page  # the contact stays with the regulator
    response = post_form(client, f"/publisher/complaints/{mine.id}", {"answer": "已核实并退款"})
    assert response.status_code == 302
    response = post_form(client, f"/publisher/complaints/{theirs.id}", {"answer": "x"},
                         form_page=f"/publisher/complaints/{mine.id}")
    assert response.status_code == 404
    session.expire_all()
    assert session.get(Complaint, mine.id).status == "answered"
    assert session.get(Complaint, theirs.id).firm_answer == ""


def test_the_regulator_forwards_and_closes_on_the_complaint_page(app, session, world):
    complaint, _ = file(session, world["firm_a"], contact="王五 139")
    session.commit()
    client = app.test_client()
    login(client, world["regulator"].email)
    url = f"/regulator/complaints/{complaint.id}"
    page = client.get(url).get_data(as_text=True)
    assert "王五 139" in page and "UNDISCLOSED" in page
    assert post_form(client, url, {"step": "forward", "text": ""}).status_code == 302
    response = post_form(client, url + "?lang=en", {"step": "forward", "text": ""})
    assert "cannot take the step" in response.get_data(as_text=True)  # refused: already forwarded
    assert post_form(client, url, {"step": "close", "text": "结论：收费未公示，责令整改"}).status_code == 302
    session.expire_all()
    closed = session.get(Complaint, complaint.id)
    assert closed.status == "closed" and closed.regulator_conclusion.startswith("结论")
    assert "<strong>0</strong> <a href=\"/regulator/complaints\">open complaints" in client.get(
        "/regulator/?lang=en").get_data(as_text=True)


@pytest.mark.parametrize("who", ["anonymous", "pub_a"])
def test_regulator_complaint_pages_refuse_others(app, session, world, who):
    complaint, _ = file(session, world["firm_a"])
    session.commit()
    client = app.test_client()
    if who != "anonymous":
        login(client, world[who].email)
    for url in ("/regulator/complaints", f"/regulator/complaints/{complaint.id}"):
        response = client.get(url)
        assert response.status_code == (302 if who == "anonymous" else 403)


def test_the_firm_page_counts_complaints_answered_and_closed(client, session, world):
    answered, _ = file(session, world["firm_a"])
    file(session, world["firm_a"])
    complaints.forward(session, answered, world["regulator"])
    complaints.answer(session, answered, world["pub_a"], "已处理")
    complaints.close(session, answered, world["regulator"], "办结")
    assert complaints.public_counts(session, world["firm_a"].id) == {"total": 2, "answered": 1, "closed": 1}
    session.commit()
    page = client.get(f"/firms/{world['firm_a'].credit_code}?lang=en").get_data(as_text=True)
    assert "Complaints received: 2; answered by the firm: 1; closed by the regulator: 1." in page
