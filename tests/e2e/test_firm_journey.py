"""Journey 1, in the browser: a firm registers, logs in, imports a file, publishes a change
and reads its published history with the hashes.

It runs on SQLite and once more on PostgreSQL: it is the journey that writes the most (a
firm, a user, an import published in one chain extension, a second version under the
per-firm lock), so it is the one where the two databases could behave differently.
"""
from __future__ import annotations

import csv
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from feereg import credit_code
from feereg.models import FeeItem, FeeItemVersion, Firm, User
from feereg.services import history
from feereg.services.registry import today

HEADER = ["credit_code", "fee_code", "fee_type", "name_zh", "name_en", "unit", "container_size", "cargo_scope",
          "trade", "direction", "amount", "currency", "tiers", "pricing_basis", "service_content", "legal_basis",
          "ports", "effective_from"]
FIRM_NAME = "深圳市端到端国际货运代理有限公司"
EMAIL = "li.na@e2e-forwarding.example"
PASSWORD = "harbour-2026!"


def fee_rows(code: str) -> list[dict]:
    """Four fees as a forwarder's own spreadsheet names them: 单证费 is an alias of the catalog's
    文件费 (DOC); the others are catalog names; one is priced by container size."""
    base = dict.fromkeys(HEADER, "")
    return [
        {**base, "credit_code": code, "fee_code": "E2E-DOC", "name_zh": "单证费", "name_en": "Documentation fee",
         "amount": "300", "currency": "CNY", "service_content": "制作并签发提单及相关单证", "ports": "YANTIAN;SHEKOU"},
        {**base, "credit_code": code, "fee_code": "E2E-BKG", "name_zh": "订舱费", "amount": "150", "currency": "CNY",
         "service_content": "向船公司订舱并确认舱位", "ports": "YANTIAN"},
        {**base, "credit_code": code, "fee_code": "E2E-CUS", "name_zh": "报关费", "amount": "200", "currency": "CNY",
         "service_content": "代理出口报关申报", "ports": "YANTIAN;SHEKOU"},
        {**base, "credit_code": code, "fee_code": "E2E-TRK-40HQ", "name_zh": "拖车费", "unit": "per_container",
         "container_size": "40HQ", "amount": "1800", "currency": "CNY", "direction": "export",
         "service_content": "盐田港区至深圳市内仓库往返拖运", "ports": "YANTIAN"},
    ]


def write_csv(path, rows) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_firm_registers_imports_publishes_and_reads_its_history(sites, open_tab, tmp_path, backend):
    site = sites(backend)
    tab = open_tab(site)
    page = tab.page
    code = credit_code.make("91440300MAE2E0001")
    wrong_digit = code[:17] + ("1" if code[17] != "1" else "2")

    # Register: a mistyped check digit is refused with the reason, then the right code is accepted.
    tab.goto("/")
    tab.check("home")
    page.get_by_role("link", name="企业注册").click()
    tab.check("register-form")
    page.get_by_label("统一社会信用代码").fill(wrong_digit)
    page.get_by_label("企业名称（中文）").fill(FIRM_NAME)
    page.get_by_label("企业名称（英文）").fill("E2E Forwarding")
    page.get_by_label("企业类别").select_option("forwarder")
    page.get_by_label("盐田").check()
    page.get_by_label("蛇口").check()
    page.get_by_label("联系电话").fill("0755-88886666")
    page.get_by_label("联系邮箱").fill("fees@e2e-forwarding.example")
    page.get_by_label("您的姓名").fill("李娜")
    page.get_by_label("您的电子邮箱（用于登录）").fill(EMAIL)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("确认密码").fill(PASSWORD)
    # Fields say what they are for (WCAG 1.3.5), so browsers fill them and password managers save them.
    for label, token in (("您的电子邮箱（用于登录）", "username"), ("密码", "new-password"), ("确认密码", "new-password"),
                         ("联系电话", "tel"), ("企业名称（中文）", "organization")):
        expect(page.get_by_label(label, exact=True)).to_have_attribute("autocomplete", token)
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(f"校验码为 {wrong_digit[17]}，应为 {code[17]}")
    tab.check("register-refused")
    with site.session() as session:
        assert session.scalar(select(Firm).where(Firm.credit_code == code)) is None
    # The form keeps what was typed except the passwords, which a browser never gets back.
    expect(page.get_by_label("企业名称（中文）")).to_have_value(FIRM_NAME)
    page.get_by_label("统一社会信用代码").fill(code)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_label("确认密码").fill(PASSWORD)
    page.get_by_role("button", name="注册", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"{FIRM_NAME} 已注册成功")
    assert tab.path.startswith("/publisher/")
    tab.check("registered")

    # Log out, and back in with the new account.
    page.get_by_role("button", name=re.compile("退出登录")).click()
    expect(page.get_by_role("status")).to_contain_text("您已退出登录")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="登录").click()
    tab.check("login-form")
    expect(page.get_by_label("密码")).to_have_attribute("autocomplete", "current-password")
    page.get_by_label("电子邮箱").fill(EMAIL)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的收费目录")
    expect(page.get_by_role("link", name="导入文件").first).to_be_visible()

    # Import a CSV in the interchange format: the preview shows every row before anything is written.
    upload = tmp_path / "e2e-fees.csv"
    write_csv(upload, fee_rows(code))
    page.get_by_role("navigation", name="发布人").get_by_role("link", name="导入文件").click()
    tab.check("import-upload")
    page.get_by_label("CSV 或 XLSX 文件").set_input_files(upload)
    page.get_by_role("button", name="检查文件").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("导入预览")
    figures = page.locator("ul.figures li")
    expect(figures).to_have_text([re.compile(r"^4\s*新增"), re.compile(r"^0\s*变更"), re.compile(r"^0\s*未变"),
                                  re.compile(r"^0\s*错误")])
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(4)
    # The firm's own name 单证费 is the catalog's alias for 文件费: the row is typed DOC.
    expect(rows.filter(has_text="单证费").locator("td.mono")).to_have_text("DOC")
    with site.session() as session:  # nothing is public before the confirmation
        assert session.scalar(select(FeeItem).join(Firm).where(Firm.credit_code == code)) is None
    tab.check("import-preview")
    page.get_by_label("变更原因").fill("首次公示收费目录")
    page.get_by_role("button", name="发布以上变更").click()
    expect(page.get_by_role("status")).to_contain_text("导入完成：新增 4 项，变更 0 项，未变 0 项")
    schedule = page.locator("table.data tbody tr")
    expect(schedule).to_have_count(4)
    for name in ("单证费", "订舱费", "报关费", "拖车费"):
        expect(schedule.filter(has_text=name).locator(".tag.ok")).to_have_text("已发布")
    tab.check("schedule-imported")

    # Publish a change: the documentation fee rises, effective after the notice period.
    effective = today() + timedelta(days=31)
    page.get_by_role("link", name="单证费", exact=True).click()
    tab.check("edit-item")
    page.get_by_label("金额").fill("320")
    page.get_by_label("生效日期").fill(effective.isoformat())
    page.get_by_label("变更原因").fill("单证制作成本上升")
    page.get_by_role("button", name="保存并发布").click()
    expect(page.get_by_role("status")).to_contain_text("已发布")

    # The published history: five versions, newest first, each with its hash from the chain.
    page.get_by_role("link", name="发布历史").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("发布历史")
    history_rows = page.locator("table.data tbody tr")
    expect(history_rows).to_have_count(5)
    shown = [cell.strip() for cell in history_rows.locator("td:last-child").all_inner_texts()]
    with site.session() as session:
        firm = session.scalar(select(Firm).where(Firm.credit_code == code))
        user = session.scalar(select(User).where(User.email == EMAIL))
        assert (user.role, user.firm_id) == ("publisher", firm.id)
        versions = list(session.scalars(select(FeeItemVersion).where(FeeItemVersion.firm_id == firm.id)
                                        .order_by(FeeItemVersion.seq.desc())))
        assert shown == [v.hash[:12] for v in versions]
        assert [v.prev_hash for v in versions[:-1]] == [v.hash for v in versions[1:]]
        assert not history.verify_firm(session, firm)
        newest = versions[0]
        assert (newest.fee_type_code, str(newest.amount), newest.effective_from) == ("DOC", "320.00", effective)
    expect(history_rows.first).to_contain_text(effective.isoformat())
    tab.check("history")

    # The fee's own history links the two versions by their hashes.
    history_rows.first.get_by_role("link").click()
    entries = page.locator("ol.timeline > li")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("原为 300.00 (+6.7%)")
    expect(entries.first.locator(".hash")).to_contain_text(f"哈希 {newest.hash[:16]}… 上一版本 {newest.prev_hash[:16]}")
    tab.check("item-history")
