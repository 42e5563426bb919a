"""Problems found by walking the site in a browser, each pinned by a test."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from feereg import credit_code
from feereg.models import AuditEvent, FeeItem

from .conftest import login, post_form
from .factories import make_firm, make_user, publish
from .test_search_web import registry_items  # noqa: F401 - fixture
from .test_web_publisher import firm_user, item_form, register_data  # noqa: F401 - fixture


def test_credit_code_reason_is_in_the_page_language(client, session):
    code = credit_code.make("91440300MA5G00001")
    bad = code[:17] + ("1" if code[17] != "1" else "2")
    zh = post_form(client, "/account/register?lang=zh", register_data(credit_code=bad)).get_data(as_text=True)
    assert f"校验码为 {bad[17]}，应为 {code[17]}" in zh and "check digit" not in zh
    zh = post_form(client, "/account/register?lang=zh", register_data(credit_code="123")).get_data(as_text=True)
    assert "应为 18 位" in zh and "must be 18" not in zh
    en = post_form(client, "/account/register?lang=en", register_data(credit_code=bad)).get_data(as_text=True)
    assert f"check digit is {bad[17]}, expected {code[17]}" in en


def test_credit_code_errors_read_plainly_outside_a_request():
    with pytest.raises(credit_code.InvalidCreditCode, match="check digit"):
        code = credit_code.make("91440300MA5G00001")
        credit_code.validate(code[:17] + ("1" if code[17] != "1" else "2"))


@pytest.mark.parametrize("lang, text", [("zh", "不是有效日期"), ("en", "is not a date")])
def test_a_malformed_date_gets_the_site_error_page_in_the_page_language(client, session, lang, text):
    firm = make_firm()
    session.commit()
    response = client.get(f"/firms/{firm.credit_code}?on=garbage&lang={lang}")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert text in body and "garbage" in body
    assert 'class="top"' in body  # the site's own page, with its header, not Werkzeug's bare one
    assert "must be a date as YYYY-MM-DD" not in body


def test_a_wrong_method_gets_the_site_error_page(client, session):
    response = client.get("/account/logout?lang=zh")
    assert response.status_code == 405 and "POST" in response.headers.get("Allow", "")
    assert "不能以这种方式使用本页面" in response.get_data(as_text=True)


def test_unit_and_pricing_basis_follow_the_fee_type_unless_chosen(client, session, firm_user):
    """Picking only the fee type must not publish the first unit and pricing basis of the lists
    (per container, government-set) for a per-B/L, market-priced fee."""
    firm, user = firm_user
    login(client, user.email)
    page = client.get("/publisher/items/new?lang=zh").get_data(as_text=True)
    assert '<select id="unit" name="unit"><option value="">按收费目录</option>' in page
    assert '<select id="pricing_basis" name="pricing_basis"><option value="">按收费目录</option>' in page
    response = post_form(client, "/publisher/items/new", item_form(unit="", pricing_basis="", publish="y"))
    assert response.status_code == 302
    item = session.scalar(select(FeeItem))
    assert (item.fee_type_code, item.unit, item.pricing_basis) == ("DOC", "per_bl", "market")
    response = post_form(client, "/publisher/items/new",
                         item_form(fee_code="DOC-2", unit="per_container", pricing_basis="government_set", save="y"))
    assert response.status_code == 302
    chosen = session.scalar(select(FeeItem).where(FeeItem.fee_code == "DOC-2"))
    assert (chosen.unit, chosen.pricing_basis) == ("per_container", "government_set")


def test_logout_audit_names_the_user_not_the_proxy(client, session, firm_user):
    firm, user = firm_user
    login(client, user.email)
    post_form(client, "/account/logout", {}, form_page="/")
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "logout"))
    assert (event.subject_type, event.subject_id) == ("User", user.id)


@pytest.mark.search_backends
def test_english_results_do_not_repeat_a_chinese_only_name(client, session):
    yard = make_firm("offport_yard", ports=("YANTIAN",))
    user = make_user("publisher", yard)
    publish(yard, user, fee_type="LOLO", name_zh="港外堆场特别吊箱费", name_en="", unit="per_container",
            amount="180", ports="YANTIAN")
    session.commit()
    body = client.get("/search?q=吊箱&lang=en").get_data(as_text=True)
    assert body.count("特别") == 1, "the Chinese name is shown once, as the link"
