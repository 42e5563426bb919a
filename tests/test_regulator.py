"""The regulator's workspace: role isolation, the dashboard counts, flag review with audit
events, firms' answers, the audit report and its CSV, policy notices."""
import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from feereg.models import AuditEvent, Flag, PolicyNotice
from feereg.services import oversight, registry, reviews
from feereg.services.errors import PermissionDenied, ServiceError

from .audit_factories import make_flag, weeks_ago
from .conftest import login, post_form
from .factories import make_firm, make_user, publish


@pytest.fixture
def world(session):
    yard = make_firm(category="offport_yard", ports=("YANTIAN",), name_zh="深圳测试堆场有限公司")
    agent = make_firm(category="shipping_agent", ports=("SHEKOU", "YANTIAN"), name_zh="深圳测试船代有限公司")
    pub_yard, pub_agent = make_user("publisher", yard), make_user("publisher", agent)
    item = publish(agent, pub_agent)
    flags = {
        "agent_peer": make_flag(agent, "PEER_OUTLIER", "medium", item=item),
        "agent_cap": make_flag(agent, "OVER_CAP", "high"),
        "agent_old": make_flag(agent, "STEEP_RISE", "medium", created_at=weeks_ago(3)),
        "yard_abolished": make_flag(yard, "ABOLISHED", "high"),
        "yard_dismissed": make_flag(yard, "MISPLACED", "medium", status="dismissed"),
    }
    w = {"yard": yard, "agent": agent, "pub_yard": pub_yard, "pub_agent": pub_agent, "item": item,
         "regulator": make_user("regulator"), "admin": make_user("admin"), **flags}
    session.commit()
    return w


REGULATOR_PAGES = ["/regulator/", "/regulator/flags", "/regulator/policy", "/regulator/complaints",
                   "/regulator/compliance", "/regulator/report", "/regulator/report.csv"]


@pytest.mark.parametrize("who", ["anonymous", "pub_agent", "regulator", "admin"])
def test_regulator_pages_are_for_regulators_and_admins(app, world, who):
    client = app.test_client()
    if who != "anonymous":
        login(client, world[who].email)
    pages = REGULATOR_PAGES + [f"/regulator/flags/{world['agent_peer'].id}",
                               f"/regulator/firms/{world['agent'].credit_code}/compliance"]
    for url in pages:
        status = client.get(url).status_code
        assert status == {"anonymous": 302, "pub_agent": 403}.get(who, 200), url


def test_dashboard_counts_by_rule_severity_category_and_port(session, world):
    board = oversight.dashboard(session, oversight.FlagFilter(), registry.today())
    assert board.total == 4  # open only: the dismissed one is not counted
    assert dict(board.by_severity) == {"high": 2, "medium": 2}
    assert dict(board.by_rule) == {"PEER_OUTLIER": 1, "OVER_CAP": 1, "STEEP_RISE": 1, "ABOLISHED": 1}
    assert dict(board.by_category) == {"shipping_agent": 3, "offport_yard": 1}
    assert dict(board.by_port) == {"YANTIAN": 4, "SHEKOU": 3}  # a firm counts at each port it serves
    assert [(firm.id, n) for firm, n in board.top_firms] == [(world["agent"].id, 3), (world["yard"].id, 1)]
    trend = dict(board.trend)
    assert len(trend) == oversight.TREND_WEEKS and sum(trend.values()) == 5  # raised, whatever the status
    assert trend[oversight.week_start(registry.today())] == 4


def test_dashboard_filters_narrow_every_count(session, world):
    f = oversight.FlagFilter(category="offport_yard", status="")
    board = oversight.dashboard(session, f, registry.today())
    assert board.total == 2 and dict(board.by_rule) == {"ABOLISHED": 1, "MISPLACED": 1}
    assert oversight.dashboard(session, oversight.FlagFilter(port="SHEKOU"), registry.today()).total == 3
    assert oversight.dashboard(session, oversight.FlagFilter(q="堆场"), registry.today()).total == 1
    assert oversight.dashboard(session, oversight.FlagFilter(severity="high", rule="OVER_CAP"),
                               registry.today()).total == 1
    recent = oversight.FlagFilter(date_from=registry.today() - timedelta(days=7))
    assert oversight.dashboard(session, recent, registry.today()).total == 3


def test_dashboard_page_shows_counts_and_a_trend_without_inline_styles(app, world):
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get("/regulator/?lang=en&category=shipping_agent").get_data(as_text=True)
    assert "<strong>3</strong>" in page and "<rect" in page and "style=" not in page
    assert world["agent"].credit_code in page and world["yard"].credit_code not in page


def test_flags_list_filters(app, world):
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get("/regulator/flags?rule=ABOLISHED").get_data(as_text=True)
    assert f"/regulator/flags/{world['yard_abolished'].id}\"" in page
    assert f"/regulator/flags/{world['agent_cap'].id}\"" not in page
    page = client.get("/regulator/flags?status=dismissed").get_data(as_text=True)
    assert f"/regulator/flags/{world['yard_dismissed'].id}\"" in page


def test_confirm_and_dismiss_are_audited_and_only_once(session, world):
    reg = world["regulator"]
    reviews.decide_flag(session, world["agent_cap"], "confirm", "超出政府指导价上限", reg)
    assert world["agent_cap"].status == "confirmed" and world["agent_cap"].reviewer_id == reg.id
    assert world["agent_cap"].decided_at is not None
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "flag.confirm"))
    assert event.subject_id == world["agent_cap"].id and event.actor_id == reg.id and event.firm_id == world["agent"].id
    with pytest.raises(ServiceError):
        reviews.decide_flag(session, world["agent_cap"], "dismiss", "changed my mind", reg)
    with pytest.raises(ServiceError):
        reviews.decide_flag(session, world["agent_peer"], "dismiss", "   ", reg)  # a note is required
    with pytest.raises(PermissionDenied):
        reviews.decide_flag(session, world["agent_peer"], "dismiss", "mine", world["pub_agent"])
    assert world["agent_peer"].status == "open"


def test_flag_page_shows_evidence_history_and_peers_and_records_a_decision(app, session, world):
    # Five other agents' DOC at Yantian make the agent's 450 an outlier: the checks flag it.
    for n in range(5):
        firm = make_firm(category="shipping_agent", ports=("YANTIAN",))
        publish(firm, make_user("publisher", firm), amount=str(100 + n))
    session.commit()
    flag = session.scalar(select(Flag).where(Flag.rule == "PEER_OUTLIER", Flag.status == "open"))
    assert flag.item_id == world["item"].id and flag.evidence["median"] == "102.50"  # 100..104 and its own 450
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get(f"/regulator/flags/{flag.id}?lang=en").get_data(as_text=True)
    assert "102.50" in page and flag.evidence["ratio"] in page  # the evidence numbers
    assert page.count("class=\"marked\"") >= 2 and "104.00 CNY" in page  # peers; the flagged one marked
    assert "History of the item" in page
    assert "Peer median" in page  # evidence named in the reader's language, the key beside it
    assert "同类中位数" in client.get(f"/regulator/flags/{flag.id}?lang=zh").get_data(as_text=True)
    response = client.post(f"/regulator/flags/{flag.id}", data={"decision": "confirm", "note": "x"})
    assert response.status_code == 400  # no CSRF token
    response = post_form(client, f"/regulator/flags/{flag.id}", {"decision": "dismiss", "note": "同业可比"})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Flag, flag.id).status == "dismissed"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "flag.dismiss"))
    assert event.subject_id == flag.id and event.actor_id == world["regulator"].id and event.detail["note"] == "同业可比"


def test_firm_sees_only_its_confirmed_flags_and_answers(app, session, world):
    reg = world["regulator"]
    reviews.decide_flag(session, world["agent_cap"], "confirm", "拖轮费超上限", reg)
    reviews.decide_flag(session, world["yard_abolished"], "confirm", "已取消的收费", reg)
    session.commit()
    client = app.test_client()
    login(client, world["pub_agent"].email)
    page = client.get("/publisher/audit").get_data(as_text=True)
    assert f"flag-{world['agent_cap'].id}" in page and "拖轮费超上限" in page
    assert f"flag-{world['agent_peer'].id}" not in page  # open: not shown to the firm yet
    assert "已取消的收费" not in page  # another firm's
    response = post_form(client, f"/publisher/flags/{world['yard_abolished'].id}/answer", {"answer": "x"},
                         form_page="/publisher/audit")
    assert response.status_code == 404
    response = post_form(client, f"/publisher/flags/{world['agent_cap'].id}/answer", {"answer": "已下调至上限"},
                         form_page="/publisher/audit")
    assert response.status_code == 302
    session.expire_all()
    flag = session.get(Flag, world["agent_cap"].id)
    assert flag.firm_answer == "已下调至上限" and flag.firm_answered_at is not None
    assert session.get(Flag, world["yard_abolished"].id).firm_answer == ""
    with pytest.raises(ServiceError):  # an open flag cannot be answered
        reviews.answer_flag(session, session.get(Flag, world["agent_peer"].id), "x", world["pub_agent"])


def test_audit_report_page_and_csv_with_neutralised_cells(app, session, world):
    reviews.decide_flag(session, world["agent_cap"], "confirm", "=HYPERLINK(\"http://evil.example\")",
                        world["regulator"])
    session.commit()
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get(f"/regulator/report?firm={world['agent'].credit_code}").get_data(as_text=True)
    assert f"/regulator/flags/{world['agent_cap'].id}\"" in page
    assert f"/regulator/flags/{world['yard_abolished'].id}\"" not in page
    response = client.get(f"/regulator/report.csv?firm={world['agent'].credit_code}")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset, not two
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert {int(r["flag_id"]) for r in rows} == {world["agent_peer"].id, world["agent_cap"].id, world["agent_old"].id}
    confirmed = next(r for r in rows if int(r["flag_id"]) == world["agent_cap"].id)
    assert confirmed["status"] == "confirmed" and confirmed["note"].startswith("'=HYPERLINK")
    assert confirmed["reviewer"] == world["regulator"].email
    by_category = client.get("/regulator/report.csv?category=offport_yard").data.decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(by_category)))) == 2
    period = client.get(f"/regulator/report.csv?date_from={(registry.today() - timedelta(days=7)).isoformat()}")
    assert len(list(csv.DictReader(io.StringIO(period.data.decode("utf-8-sig"))))) == 4


def test_a_mistyped_firm_reports_nothing_rather_than_everything(app, world):
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get("/regulator/report?firm=NOPE").get_data(as_text=True)
    assert "/regulator/flags/" not in page
    response = client.get("/regulator/report.csv?firm=NOPE")
    assert response.status_code == 400 and b"flag_id" not in response.data


def test_policy_notice_form_records_and_rechecks(app, session, world):
    client = app.test_client()
    login(client, world["regulator"].email)
    data = {"kind": "cap", "fee_type_code": "DOC", "amount": "300", "currency": "CNY", "replaced_by": "",
            "unit": "", "container_size": "", "port": "", "effective_from": "2020-01-01",
            "reference": "测试文件〔2026〕1号", "note": ""}
    assert client.post("/regulator/policy", data=data).status_code == 400  # CSRF
    response = post_form(client, "/regulator/policy", data)
    assert response.status_code == 302
    notice = session.scalar(select(PolicyNotice))
    assert notice.amount == 300 and notice.created_by_id == world["regulator"].id
    # The agent's DOC at 450 is above the new cap: re-checked at once.
    flag = session.scalar(select(Flag).where(Flag.rule == "OVER_CAP", Flag.item_id == world["item"].id))
    assert flag is not None and flag.evidence["cap"] == "300.00"
    page = client.get("/regulator/policy").get_data(as_text=True)
    assert "测试文件" in page and "<td>上限（最高金额）" in page  # the kind by its label, not "cap"


def test_audit_log_shows_notes_as_written_and_report_choices_by_label(app, session, world):
    reviews.decide_flag(session, world["agent_cap"], "confirm", "超出上限 <b>", world["regulator"])
    session.commit()
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get("/regulator/audit").get_data(as_text=True)
    assert "超出上限 &lt;b&gt;" in page and "\\u8d85" not in page  # readable, and escaped
    page = client.get("/regulator/report?lang=zh").get_data(as_text=True)
    assert ">已确认</option>" in page and ">confirmed</option>" not in page


def test_dashboard_screen_reader_table_is_clipped_in_a_box(app, world):
    # A table ignores width:1px, so the hidden trend table sits in a clipped div (no sideways scroll).
    client = app.test_client()
    login(client, world["regulator"].email)
    page = client.get("/regulator/").get_data(as_text=True)
    assert '<div class="sr"><table><caption>' in page and 'class="data sr"' not in page
