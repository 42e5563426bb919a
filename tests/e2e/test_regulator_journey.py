"""Journey 3, in the browser: a regulator logs in (with the keyboard only), reviews flags from
the queue (one confirmed, one dismissed, each with a note), and takes a complaint from receipt
to closure, the firm answering it in between; the database holds every step afterwards."""
from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from feereg.models import AuditEvent, Complaint, Flag, User

from .conftest import PUBLISHER, REGULATOR, login, login_with_the_keyboard

CONFIRM_NOTE = "企业收费目录未列明该项收费，确认属于未公示收费，责令限期补充公示。"
DISMISS_NOTE = "涨幅系成本上升所致，已提前公示，不属于违规。"
FORWARD_NOTE = "请企业于五个工作日内说明收费依据。"
ANSWER = "该费用系误收，已全额退还托运人，并已补充公示。"
CONCLUSION = "企业已退还误收费用并补充公示，投诉办结。"


def decide(tab, decision: str, note: str) -> None:
    page = tab.page
    page.get_by_label(decision).check()
    page.get_by_label("说明", exact=True).fill(note)
    page.get_by_role("button", name="记录决定").click()


def test_a_regulator_reviews_flags_and_closes_a_complaint(site, open_tab):
    tab = open_tab(site, "regulator")
    page = tab.page
    login_with_the_keyboard(tab, REGULATOR)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    tab.check("dashboard")

    # The flag queue, narrowed to undisclosed charges: the one the complaint raised.
    page.get_by_role("navigation", name="监管部门").get_by_role("link", name="疑点", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("疑点")
    tab.check("flag-queue")
    page.get_by_label("规则").select_option("UNDISCLOSED")
    page.get_by_role("button", name="筛选").click()
    queue = page.locator("table.data tbody tr")
    expect(queue).to_have_count(1)
    expect(queue).to_contain_text("未公示收费")
    queue.get_by_role("link", name=str(site.flag_id), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"疑点 {site.flag_id}")
    tab.check("flag")
    decide(tab, "确认：属于违规", CONFIRM_NOTE)
    expect(page.get_by_role("status")).to_contain_text(f"疑点 {site.flag_id}：已确认")
    expect(page.locator("dl.facts").last).to_contain_text(CONFIRM_NOTE)
    tab.check("flag-confirmed")

    # Another flag, a steep rise, dismissed with its reason.
    tab.goto("/regulator/flags?status=open&rule=STEEP_RISE")
    tab.check("steep-rises")
    page.locator("table.data tbody tr").first.get_by_role("link").first.click()
    dismissed_id = int(page.url.rsplit("/", 1)[1])
    decide(tab, "排除：不属于违规", DISMISS_NOTE)
    expect(page.get_by_role("status")).to_contain_text(f"疑点 {dismissed_id}：已排除")
    tab.check("flag-dismissed")

    # The complaint behind the first flag: forwarded to the firm with a note.
    tab.goto(f"/regulator/flags/{site.flag_id}")
    page.get_by_role("link", name=f"#{site.complaint_id}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"投诉 {site.complaint_id}")
    tab.check("complaint-received")
    page.get_by_label("说明（选填）").fill(FORWARD_NOTE)
    page.get_by_role("button", name="转交企业").click()
    expect(page.get_by_role("status")).to_contain_text(f"投诉 {site.complaint_id} 现为“已转企业”")
    expect(page.get_by_role("button", name="转交企业")).to_have_count(0)
    tab.check("complaint-forwarded")

    # The firm's publisher answers it from its own workspace.
    firm_tab = open_tab(site, "publisher")
    login(firm_tab, PUBLISHER)
    firm_tab.check("schedule")
    firm_tab.page.get_by_role("navigation", name="发布人").get_by_role("link", name="投诉").click()
    firm_tab.check("complaints")
    firm_tab.page.get_by_role("link", name=re.compile(rf"^#?{site.complaint_id}$")).click()
    firm_tab.check("complaint-forwarded")
    firm_tab.page.get_by_label("企业答复").fill(ANSWER)
    firm_tab.page.get_by_role("button", name="提交答复").click()
    expect(firm_tab.page.get_by_role("status")).to_contain_text("答复已记录")
    firm_tab.check("complaint-answered")

    # The regulator reads the answer and closes the complaint with a conclusion.
    page.reload()
    expect(page.locator("main")).to_contain_text(ANSWER)
    page.get_by_label("处理结论").fill(CONCLUSION)
    page.get_by_role("button", name="作出结论并办结").click()
    expect(page.get_by_role("status")).to_contain_text(f"投诉 {site.complaint_id} 现为“已办结”")
    expect(page.locator("form textarea")).to_have_count(0)  # nothing more to do on a closed complaint
    tab.check("complaint-closed")

    with site.session() as session:
        regulator = session.scalar(select(User).where(User.email == REGULATOR))
        confirmed, dismissed = session.get(Flag, site.flag_id), session.get(Flag, dismissed_id)
        assert (confirmed.status, confirmed.note, confirmed.reviewer_id) == ("confirmed", CONFIRM_NOTE, regulator.id)
        assert (dismissed.status, dismissed.note, dismissed.reviewer_id) == ("dismissed", DISMISS_NOTE, regulator.id)
        complaint = session.get(Complaint, site.complaint_id)
        assert (complaint.status, complaint.firm_answer, complaint.regulator_conclusion) == \
            ("closed", ANSWER, CONCLUSION)
        assert complaint.received_at <= complaint.forwarded_at <= complaint.answered_at <= complaint.closed_at
        actions = [(e.action, e.subject_id) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action.startswith("flag.") | AuditEvent.action.startswith("complaint."))
            .order_by(AuditEvent.id))]
        assert actions[-5:] == [("flag.confirm", site.flag_id), ("flag.dismiss", dismissed_id),
                                ("complaint.forward", site.complaint_id), ("complaint.answer", site.complaint_id),
                                ("complaint.close", site.complaint_id)]
    tab.assert_clean()
    firm_tab.assert_clean()
