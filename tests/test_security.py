"""Who may do what: roles, firm isolation by URL and by form tampering, CSRF, login throttling."""
import re

import pytest
from sqlalchemy import select

from feereg.models import AuditEvent, FeeItem, FeeItemVersion, User
from feereg.services import registry

from .conftest import csrf_token, login, post_form
from .factories import PASSWORD, item_values, make_firm, make_user, publish
from .test_imports import csv_bytes, row
from .test_web_publisher import item_form


@pytest.fixture
def world(session):
    firm_a, firm_b = make_firm(), make_firm()
    a, b = make_user("publisher", firm_a), make_user("publisher", firm_b)
    item_b = publish(firm_b, b)
    draft_b = registry.create_draft(session, firm_b, item_values(fee_type="EIR", name_zh="设备交接单费",
                                                                 unit="per_container", amount="77"), b)
    users = {"publisher_a": a, "publisher_b": b, "regulator": make_user("regulator"), "admin": make_user("admin")}
    session.commit()
    return {"firm_a": firm_a, "firm_b": firm_b, "item_b": item_b, "draft_b": draft_b, **users}


ROUTES = [
    # (path template, who may open it: anonymous, publisher, regulator, admin)
    ("/", {"anonymous", "publisher", "regulator", "admin"}),
    ("/firms", {"anonymous", "publisher", "regulator", "admin"}),
    ("/publisher/", {"publisher"}),
    ("/publisher/items/new", {"publisher"}),
    ("/publisher/import", {"publisher"}),
    ("/regulator/", {"regulator", "admin"}),
    ("/regulator/audit", {"regulator", "admin"}),
    ("/admin/firms", {"admin"}),
    ("/admin/users", {"admin"}),
]


@pytest.mark.parametrize("path,allowed", ROUTES)
@pytest.mark.parametrize("who", ["anonymous", "publisher", "regulator", "admin"])
def test_route_role_matrix(app, world, path, allowed, who):
    client = app.test_client()
    if who != "anonymous":
        login(client, world[{"publisher": "publisher_a"}.get(who, who)].email)
    response = client.get(path)
    if who in allowed:
        assert response.status_code == 200
    elif who == "anonymous":
        assert response.status_code == 302 and "/account/login" in response.location
    else:
        assert response.status_code == 403


def test_publisher_cannot_open_or_change_another_firms_items_by_url(app, world, session):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    for item in (world["item_b"], world["draft_b"]):
        assert client.get(f"/publisher/items/{item.id}").status_code == 404
        assert client.get(f"/publisher/items/{item.id}/withdraw").status_code == 404
        token = csrf_token(client, "/publisher/items/new")
        response = client.post(f"/publisher/items/{item.id}", data={**item_form(amount="1"), "csrf_token": token,
                                                                     "lock_version": "1", "publish": "y"})
        assert response.status_code == 404
        response = client.post(f"/publisher/items/{item.id}/withdraw", data={
            "csrf_token": token, "effective_from": registry.today().isoformat(), "lock_version": "1"})
        assert response.status_code == 404
    session.expire_all()
    assert session.get(FeeItem, world["item_b"].id).status == "published"
    assert session.get(FeeItem, world["draft_b"].id).amount == 77


def test_drafts_are_not_public(app, world):
    client = app.test_client()
    assert client.get(f"/items/{world['draft_b'].id}").status_code == 404
    page = client.get(f"/firms/{world['firm_b'].credit_code}").get_data(as_text=True)
    assert "77.00" not in page


def test_form_tampering_cannot_move_an_item_to_another_firm(app, world, session):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    response = post_form(client, "/publisher/items/new", {**item_form(publish="y"), "firm_id": world["firm_b"].id})
    assert response.status_code == 302
    created = session.scalar(select(FeeItem).order_by(FeeItem.id.desc()))
    assert created.firm_id == world["firm_a"].id


def test_import_cannot_write_another_firms_rows(app, world, session):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    content = csv_bytes([row(world["firm_b"].credit_code, amount="1")])
    response = post_form(client, "/publisher/import", {"file": (__import__("io").BytesIO(content), "x.csv")},
                         content_type="multipart/form-data")
    page = client.get(response.location + "&lang=en").get_data(as_text=True)
    assert "only import your own firm" in page
    other = app.test_client()
    login(other, world["publisher_b"].email)
    assert other.get(response.location).status_code == 404  # another user's pending upload


def test_post_without_csrf_token_is_refused(app, world, session):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    response = client.post("/publisher/items/new", data=item_form(publish="y"))
    assert response.status_code == 400
    assert session.scalar(select(FeeItem).where(FeeItem.firm_id == world["firm_a"].id)) is None
    response = client.post("/account/login", data={"email": world["admin"].email, "password": PASSWORD})
    assert response.status_code == 400


def test_login_locks_after_repeated_failures(app, world, session):
    client = app.test_client()
    email = world["regulator"].email
    for _ in range(5):
        assert post_form(client, "/account/login", {"email": email, "password": "wrong-password-1"}).status_code == 200
    response = post_form(client, "/account/login?lang=en", {"email": email, "password": PASSWORD})
    assert response.status_code == 200 and "locked" in response.get_data(as_text=True)
    actions = session.scalars(select(AuditEvent.action)).all()
    assert actions.count("login.failed") >= 5 and "user.locked" in actions


def test_login_redirect_refuses_other_sites(app, world):
    client = app.test_client()
    response = post_form(client, "/account/login?next=//evil.example/x",
                         {"email": world["admin"].email, "password": PASSWORD}, form_page="/account/login")
    assert response.status_code == 302 and "evil.example" not in response.location


def test_security_headers_and_no_inline_script(app, world):
    response = app.test_client().get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.get_data(as_text=True)


def test_upload_size_is_limited(app, world):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    client = app.test_client()
    login(client, world["publisher_a"].email)
    response = post_form(client, "/publisher/import", {"file": (__import__("io").BytesIO(b"x" * 5000), "big.csv")},
                         content_type="multipart/form-data")
    assert response.status_code == 413
