"""A firm's journey on the site: register, add and publish items, import, history."""
import re

import pytest
from sqlalchemy import select

from feereg import credit_code
from feereg.models import FeeItem, FeeItemVersion, Firm, User
from feereg.services import history, registry

from .conftest import login, post_form
from .factories import PASSWORD, make_firm, make_user, publish
from .test_imports import csv_bytes, standard_rows

VALID_CODE = credit_code.make("91440300MA5G00001")


def register_data(**overrides):
    data = {"credit_code": VALID_CODE, "name_zh": "深圳市新港国际货运代理有限公司", "name_en": "Xingang Forwarding",
            "category": "forwarder", "ports": ["YANTIAN", "SHEKOU"], "contact_phone": "0755-12345678",
            "contact_email": "ops@xingang.example", "name": "王敏", "email": "wang@xingang.example",
            "password": "harbour-2026!", "password_again": "harbour-2026!"}
    data.update(overrides)
    return data


def item_form(**overrides):
    data = {"fee_type": "DOC", "name_zh": "文件费", "name_en": "Documentation fee", "unit": "per_bl",
            "container_size": "", "cargo_scope": "", "trade": "", "direction": "", "amount": "450",
            "currency": "CNY", "pricing_basis": "market", "service_content": "签发提单", "legal_basis": "",
            "ports": ["YANTIAN"], "tax_included": "y", "tax_rate": "", "tiers": "", "fee_code": "",
            "effective_from": registry.today().isoformat(), "reason": ""}
    data.update(overrides)
    return data


def test_register_firm_and_publisher_then_land_on_the_schedule(client, session):
    response = post_form(client, "/account/register", register_data())
    assert response.status_code == 302 and response.location.endswith("/publisher/")
    firm = session.scalar(select(Firm))
    user = session.scalar(select(User))
    assert firm.credit_code == VALID_CODE and firm.port_codes == ["SHEKOU", "YANTIAN"]
    assert user.role == "publisher" and user.firm_id == firm.id
    assert user.password_hash.startswith("$argon2") and "harbour" not in user.password_hash
    page = client.get("/publisher/").get_data(as_text=True)
    assert firm.name_zh in page


@pytest.mark.parametrize("field,value,fragment", [
    ("credit_code", VALID_CODE[:17] + ("1" if VALID_CODE[17] != "1" else "2"), "check digit"),
    ("credit_code", "123", "18"),
    ("password", "short1", "10"),
    ("password_again", "something-else-1", "differ"),
    ("ports", [], "port"),
    ("email", "not-an-email", "mail"),
])
def test_registration_errors_are_shown_on_the_form(client, session, field, value, fragment):
    response = post_form(client, "/account/register?lang=en", register_data(**{field: value}))
    assert response.status_code == 200
    assert fragment in response.get_data(as_text=True)
    assert session.scalar(select(Firm)) is None


def test_duplicate_credit_code_is_refused(client, session):
    make_firm(credit_code=VALID_CODE)
    session.commit()
    response = post_form(client, "/account/register?lang=en", register_data())
    assert "already registered" in response.get_data(as_text=True)
    assert session.scalar(select(User)) is None


@pytest.fixture
def firm_user(session):
    firm = make_firm(category="shipping_agent")
    user = make_user("publisher", firm)
    session.commit()
    return firm, user


def test_publisher_adds_publishes_edits_and_sees_history(client, session, firm_user):
    firm, user = firm_user
    login(client, user.email)
    response = post_form(client, "/publisher/items/new", item_form(publish="y"))
    assert response.status_code == 302
    item = session.scalar(select(FeeItem))
    assert item.status == "published"

    page = client.get(f"/publisher/items/{item.id}").get_data(as_text=True)
    lock = re.search(r'name="lock_version"[^>]*value="(\d+)"', page).group(1)
    response = post_form(client, f"/publisher/items/{item.id}",
                         item_form(amount="480", lock_version=lock, save="y"))
    assert response.status_code == 302
    session.expire_all()
    assert item.has_draft and history.schedule_on(session, firm, registry.today())[0].amount == 450

    page = client.get(f"/publisher/items/{item.id}/publish").get_data(as_text=True)
    lock = re.search(r'name="lock_version"[^>]*value="(\d+)"', page).group(1)
    response = post_form(client, f"/publisher/items/{item.id}/publish",
                         {"effective_from": registry.today().isoformat(), "reason": "cost", "lock_version": lock})
    assert response.status_code == 302
    history_page = client.get(f"/items/{item.id}?lang=en").get_data(as_text=True)
    assert "480.00" in history_page and "450.00" in history_page and "cost" in history_page


def test_item_form_errors_name_the_field(client, session, firm_user):
    firm, user = firm_user
    login(client, user.email)
    response = post_form(client, "/publisher/items/new?lang=en",
                         item_form(amount="100-200", tiers="free:7;8-14:85", publish="y"))
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "not a range" in body and "per-day unit" in body
    assert session.scalar(select(FeeItem)) is None


def test_second_editor_gets_changed_since_you_opened_it(client, session, firm_user, app):
    firm, user = firm_user
    item = publish(firm, user)
    colleague = make_user("publisher", firm)
    session.commit()
    login(client, user.email)
    page = client.get(f"/publisher/items/{item.id}").get_data(as_text=True)
    lock = re.search(r'name="lock_version"[^>]*value="(\d+)"', page).group(1)

    other = app.test_client()
    login(other, colleague.email)
    assert post_form(other, f"/publisher/items/{item.id}", item_form(amount="470", lock_version=lock, save="y")).status_code == 302

    response = post_form(client, f"/publisher/items/{item.id}?lang=en",
                         item_form(amount="999", lock_version=lock, save="y"))
    assert response.status_code == 409
    assert "Changed since you opened it" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(FeeItem, item.id).amount == 470


def test_import_upload_preview_confirm(client, session, firm_user):
    firm, user = firm_user
    login(client, user.email)
    content = csv_bytes(standard_rows(firm.credit_code))
    response = post_form(client, "/publisher/import", {
        "file": (__import__("io").BytesIO(content), "fees.csv"),
        "effective_from": registry.today().isoformat()}, content_type="multipart/form-data")
    assert response.status_code == 302
    preview_url = response.location
    preview = client.get(preview_url + "&lang=en").get_data(as_text=True)
    assert "码头操作费" in preview and session.scalar(select(FeeItemVersion)) is None
    fingerprint = re.search(r'name="fingerprint"[^>]*value="([^"]+)"', preview).group(1)
    token = preview_url.split("/import/")[1].split("?")[0]
    response = post_form(client, f"/publisher/import/{token}", {
        "token": token, "fingerprint": fingerprint, "effective_from": registry.today().isoformat(),
        "reason": "2027 tariff", "confirm": "y"}, form_page=preview_url)
    assert response.status_code == 302
    assert len(history.schedule_on(session, firm, registry.today())) == 4


def test_import_with_errors_cannot_be_confirmed(client, session, firm_user):
    firm, user = firm_user
    login(client, user.email)
    rows = standard_rows(firm.credit_code)
    rows[1]["amount"] = "abc"
    response = post_form(client, "/publisher/import", {
        "file": (__import__("io").BytesIO(csv_bytes(rows)), "fees.csv")}, content_type="multipart/form-data")
    preview_url = response.location
    page = client.get(preview_url).get_data(as_text=True)
    assert "abc" in page and 'name="confirm"' not in page
    token = preview_url.split("/import/")[1].split("?")[0]
    fingerprint = re.search(r'name="fingerprint"[^>]*value="([^"]+)"', page).group(1)
    post_form(client, f"/publisher/import/{token}", {"token": token, "fingerprint": fingerprint,
                                                      "confirm": "y"}, form_page=preview_url)
    assert session.scalar(select(FeeItemVersion)) is None


def test_suspended_firm_page_says_so_and_publishing_is_refused(client, session, firm_user):
    from feereg.services import firms

    firm, user = firm_user
    item = publish(firm, user)
    firms.set_status(session, firm, "suspended", "未按规定公示", make_user("admin"))
    session.commit()
    page = client.get(f"/firms/{firm.credit_code}?lang=en").get_data(as_text=True)
    assert "This firm is suspended" in page and "未按规定公示" in page
    login(client, user.email)
    response = post_form(client, "/publisher/items/new", item_form(fee_type="EIR", name_zh="设备交接单费",
                                                                   unit="per_container", publish="y"))
    assert response.status_code == 200
    assert session.scalar(select(FeeItem).where(FeeItem.id != item.id)) is None


def test_schedule_as_of_a_past_date_on_the_public_page(client, session, firm_user):
    from datetime import timedelta

    firm, user = firm_user
    start = registry.today() - timedelta(days=60)
    item = publish(firm, user, effective_from=start, amount="300")
    from .factories import item_values
    registry.update_draft(session, item, item_values(amount="390"), user, item.lock_version)
    registry.publish_item(session, item, user, start + timedelta(days=30), allow_backdate=True)
    session.commit()
    old = client.get(f"/firms/{firm.credit_code}?on={(start + timedelta(days=10)).isoformat()}").get_data(as_text=True)
    now = client.get(f"/firms/{firm.credit_code}").get_data(as_text=True)
    assert "300.00" in old and "390.00" not in old
    assert "390.00" in now and "300.00" not in now
    assert client.get(f"/firms/{firm.credit_code}?on=yesterday").status_code == 400
