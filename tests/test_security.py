"""Firm isolation by URL and by form tampering, login throttling, sessions, passwords, rate
limits, headers and upload limits. Every route × every role is tests/test_route_matrix.py;
CSRF on every write is tests/test_csrf.py."""
import io
import re
import uuid
import warnings
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select

from feereg import login_sessions
from feereg.config import from_environment
from feereg.extensions import db
from feereg.models import AuditEvent, Complaint, FeeItem, FeeItemVersion, PendingImport, User
from feereg.services import accounts, passwords, registry

from .conftest import IN_CI, csrf_token, login, post_form
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
    login(client, world["publisher_a"].email)  # another firm's publisher sees what anyone sees
    assert client.get(f"/items/{world['draft_b'].id}").status_code == 404
    page = client.get(f"/firms/{world['firm_b'].credit_code}").get_data(as_text=True)
    assert "77.00" not in page
    for path in (f"/api/v1/fee-items/{world['draft_b'].id}", f"/api/v1/fee-items/{world['draft_b'].id}/versions"):
        response = client.get(path)
        assert response.status_code == 404 and response.is_json, path
    listed = client.get(f"/api/v1/fee-items?firm={world['firm_b'].credit_code}").get_json()
    assert world["draft_b"].id not in [item["id"] for item in listed["items"]] and listed["total"] == 1


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


def test_an_oversize_upload_gets_the_413_page_and_writes_nothing(app, world, session):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    client = app.test_client()
    login(client, world["publisher_a"].email)
    for lang, text in (("zh", "上传文件过大（上限为 1 KB）。"), ("en", "The upload is too large (the limit is 1 KB).")):
        response = post_form(client, f"/publisher/import?lang={lang}",
                             {"file": (io.BytesIO(b"x" * 5000), "big.csv")}, form_page="/publisher/import",
                             content_type="multipart/form-data")
        assert response.status_code == 413 and text in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(PendingImport)) == 0
    assert from_environment({"FEEREG_MAX_CONTENT_LENGTH": "1048576", "FEEREG_IMPORT_MAX_ROWS": "3"}) == {
        "MAX_CONTENT_LENGTH": 1048576, "IMPORT_MAX_ROWS": 3}


def test_a_file_with_too_many_rows_is_refused_by_name_and_imports_nothing(app, world, session):
    app.config["IMPORT_MAX_ROWS"] = 3
    client = app.test_client()
    login(client, world["publisher_a"].email)
    rows = [row(world["firm_a"].credit_code, fee_code=f"F{i}", amount="10") for i in range(4)]
    response = post_form(client, "/publisher/import", {"file": (io.BytesIO(csv_bytes(rows)), "four.csv")},
                         content_type="multipart/form-data")
    assert response.status_code == 302
    preview = client.get(response.location + "&lang=en").get_data(as_text=True)
    assert "The file has more than 3 rows; split it into smaller files." in preview
    fingerprint = re.search(r'name="fingerprint"[^>]*value="([^"]*)"', preview)
    token = response.location.split("/import/")[1].split("?")[0]
    confirm = post_form(client, f"/publisher/import/{token}?lang=en",
                        {"token": token, "fingerprint": fingerprint.group(1) if fingerprint else "-", "confirm": "y"},
                        form_page=response.location)
    assert confirm.status_code == 200 and "nothing was imported" in confirm.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(FeeItem).where(FeeItem.firm_id == world["firm_a"].id)) == 0


# --- headers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/api/v1/fee-types", "/no-such-page", "/static/site.css"])
def test_every_answer_carries_the_security_headers(app, world, path):
    response = app.test_client().get(path)
    response.close()
    assert response.headers["Permissions-Policy"].startswith("camera=()")
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # plain http: a browser ignores it anyway


def test_hsts_over_https_only_and_configurable(app, world):
    client = app.test_client()
    assert client.get("/", base_url="https://localhost").headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/").headers
    app.config["HSTS"] = ""
    assert "Strict-Transport-Security" not in client.get("/", base_url="https://localhost").headers


# --- form-field tampering --------------------------------------------------------------------

def test_tampered_ids_in_an_item_form_touch_only_the_url_s_own_item(app, world, session):
    item_a = publish(world["firm_a"], world["publisher_a"])
    session.commit()
    before_b = _item_state(session, world["item_b"].id)
    client = app.test_client()
    login(client, world["publisher_a"].email)
    response = post_form(client, f"/publisher/items/{item_a.id}", {
        **item_form(amount="123"), "publish": "y", "lock_version": str(item_a.lock_version),
        "firm_id": world["firm_b"].id, "item_id": world["item_b"].id, "id": world["item_b"].id})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(FeeItem, item_a.id).firm_id == world["firm_a"].id
    assert session.get(FeeItem, item_a.id).amount == 123
    assert _item_state(session, world["item_b"].id) == before_b


def test_an_import_confirmed_with_another_uploads_token_acts_on_the_url_s_own(app, world, session):
    from feereg.services import imports

    theirs = imports.stash_upload(session, world["publisher_b"], "b.csv",
                                  csv_bytes([row(world["firm_b"].credit_code, amount="1")]))
    mine = imports.stash_upload(session, world["publisher_a"], "a.csv",
                                csv_bytes([row(world["firm_a"].credit_code, amount="1")]))
    session.commit()
    theirs_token, mine_token = theirs.token, mine.token
    client = app.test_client()
    login(client, world["publisher_a"].email)
    response = post_form(client, f"/publisher/import/{mine_token}", {"token": theirs_token, "fingerprint": "-",
                                                                     "discard": "y"})
    assert response.status_code == 302
    session.expire_all()
    statuses = dict(session.execute(select(PendingImport.token, PendingImport.status)).all())
    assert statuses == {theirs_token: "pending", mine_token: "discarded"}
    assert client.get(f"/publisher/import/{theirs_token}").status_code == 404


def test_a_complaint_cannot_name_an_item_of_another_firm_or_a_draft(app, world, session):
    client = app.test_client()
    base = {"firm": world["firm_a"].credit_code, "fee_name": "文件费", "amount": "300", "currency": "CNY",
            "charged_on": registry.today().isoformat(), "description": "发票 1"}
    for item in (world["item_b"], world["draft_b"]):
        page = post_form(client, "/complaints/new?lang=en", {**base, "item": str(item.id)},
                         form_page="/complaints/new").get_data(as_text=True)
        assert "is not one of this firm" in page
    page = post_form(client, "/complaints/new?lang=en", {**base, "firm": world["firm_b"].credit_code,
                                                         "item": str(world["draft_b"].id)},
                     form_page="/complaints/new").get_data(as_text=True)
    assert "is not one of this firm" in page
    assert session.scalar(select(func.count()).select_from(Complaint)) == 0


def _item_state(session, item_id: int) -> tuple:
    item = session.get(FeeItem, item_id)
    versions = session.scalar(select(func.count()).select_from(FeeItemVersion).where(FeeItemVersion.item_id == item_id))
    return item.firm_id, item.amount, item.status, item.lock_version, versions


# --- sessions: cookies, renewal on login, lifetime ----------------------------------------



def session_of(app, client) -> dict:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return dict(app.session_interface.get_signing_serializer(app).loads(cookie.value)) if cookie else {}


def _set_cookie(response, name: str) -> str:
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert found, f"no {name} cookie set"
    return found[-1]


def test_the_session_cookie_is_secure_host_only_httponly_and_lax(app, world):
    client = app.test_client()
    response = login(client, world["regulator"].email)
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-feereg"
    header = _set_cookie(response, "__Host-feereg")
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= set(attributes) and "domain" not in attributes
    assert attributes["samesite"].strip() == "SameSite=Lax" and attributes["path"].strip() == "Path=/"
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_plain_http_development_is_an_explicit_switch(migrated, tmp_path, session, world):
    """FEEREG_SESSION_COOKIE_SECURE=false: a cookie without Secure (and so without the
    __Host- prefix, which browsers refuse then), and logging in still works."""
    from feereg import create_app

    from .conftest import IsolatedClient, _test_config

    overrides = from_environment({"FEEREG_SESSION_COOKIE_SECURE": "false"})
    assert overrides == {"SESSION_COOKIE_SECURE": False}
    dev = create_app({**_test_config(migrated, tmp_path), **overrides})
    dev.test_client_class = IsolatedClient
    assert dev.config["SESSION_COOKIE_NAME"] == "feereg" and dev.config["REMEMBER_COOKIE_SECURE"] is False
    client = dev.test_client()
    header = _set_cookie(login(client, world["regulator"].email), "feereg")
    assert "secure" not in header.lower()
    assert client.get("/regulator/").status_code == 200
    with dev.app_context():
        db.engine.dispose()


def test_production_refuses_cookies_without_secure():
    from feereg.config import Defaults, check_production

    ready = {"SECRET_KEY": "k" * 64, "SQLALCHEMY_DATABASE_URI": "postgresql://db/feereg", "SERVERS": 1,
             "SESSION_COOKIE_SECURE": Defaults.SESSION_COOKIE_SECURE}
    assert check_production(ready) == []
    problems = check_production({**ready, **from_environment({"FEEREG_SESSION_COOKIE_SECURE": "false"})})
    assert len(problems) == 1 and problems[0].startswith("FEEREG_SESSION_COOKIE_SECURE=false")


def test_login_starts_a_new_session(app, world):
    """Nothing from before the login survives but the language: a CSRF token (or a session)
    planted in the browser beforehand is worthless after it."""
    client = app.test_client()
    planted = csrf_token(client, "/account/login?lang=en")
    before = session_of(app, client)
    assert before["lang"] == "en" and "csrf_token" in before
    login(client, world["publisher_a"].email)
    after = session_of(app, client)
    assert after["lang"] == "en" and after.get("csrf_token") != before["csrf_token"]
    assert after["_user_id"] == str(world["publisher_a"].id)
    response = client.post("/publisher/items/new", data={**item_form(publish="y"), "csrf_token": planted})
    assert response.status_code == 400


def test_logout_ends_the_session(app, world):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    token = csrf_token(client, "/publisher/")
    assert client.post("/account/logout", data={"csrf_token": token}).status_code == 302
    assert "_user_id" not in session_of(app, client) and "csrf_token" not in session_of(app, client)
    assert client.get("/publisher/").status_code == 302


def test_a_login_ends_after_the_idle_timeout_and_the_lifetime(app, world, monkeypatch):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    start = login_sessions._now()
    idle, lifetime = app.config["SESSION_IDLE_TIMEOUT"], app.permanent_session_lifetime.total_seconds()
    assert (idle, lifetime) == (2 * 3600, 12 * 3600)
    # Active every (idle - 60) seconds: still logged in, until the lifetime is over.
    moment = start
    while moment + idle - 60 < start + lifetime:
        moment += idle - 60
        monkeypatch.setattr(login_sessions, "_now", lambda: moment)
        assert client.get("/publisher/").status_code == 200, (moment - start) / 3600
    monkeypatch.setattr(login_sessions, "_now", lambda: start + lifetime + 1)
    response = client.get("/publisher/")
    assert response.status_code == 302 and "/account/login" in response.location
    # Idle: a new login, then nothing for longer than the idle timeout.
    monkeypatch.setattr(login_sessions, "_now", lambda: start)
    other = app.test_client()
    login(other, world["publisher_a"].email)
    monkeypatch.setattr(login_sessions, "_now", lambda: start + idle + 1)
    assert other.get("/publisher/").status_code == 302


def test_changing_the_password_logs_out_the_other_sessions(app, world, session):
    here, elsewhere = app.test_client(), app.test_client()
    for client in (here, elsewhere):
        login(client, world["publisher_a"].email)
    response = post_form(here, "/account/password", {"current": PASSWORD, "password": "Tide-table-2027",
                                                     "password_again": "Tide-table-2027"})
    assert response.status_code == 302
    assert here.get("/publisher/").status_code == 200
    assert elsewhere.get("/publisher/").status_code == 302
    session.expire_all()
    user = session.get(User, world["publisher_a"].id)
    assert accounts.password_matches(user, "Tide-table-2027") and not accounts.password_matches(user, PASSWORD)
    assert "password.change" in session.scalars(select(AuditEvent.action)).all()


def test_the_password_page_explains_each_refusal(app, world, session):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    cases = [
        ({"current": "not-my-password-1", "password": "Tide-table-2027"}, "current password is not right"),
        ({"current": PASSWORD, "password": "Password123!"}, "passwords tried first"),
        ({"current": PASSWORD, "password": PASSWORD}, "must differ"),
        ({"current": PASSWORD, "password": "short-1"}, "at least 10 characters"),
    ]
    for data, reason in cases:
        data["password_again"] = data["password"]
        response = post_form(client, "/account/password?lang=en", data, form_page="/account/password")
        assert response.status_code == 200 and reason in response.get_data(as_text=True), reason
    zh = post_form(client, "/account/password?lang=zh", {"current": PASSWORD, "password": "Password123!",
                                                         "password_again": "Password123!"},
                   form_page="/account/password").get_data(as_text=True)
    assert "攻击者最先尝试的密码" in zh
    session.expire_all()
    assert accounts.password_matches(session.get(User, world["publisher_a"].id), PASSWORD)


def test_a_disabled_account_is_logged_out_at_its_next_request(app, world, session):
    client = app.test_client()
    login(client, world["publisher_a"].email)
    assert client.get("/publisher/").status_code == 200
    admin = app.test_client()
    login(admin, world["admin"].email)
    assert post_form(admin, f"/admin/users/{world['publisher_a'].id}", {"action": "disable"},
                     form_page="/admin/users").status_code == 302
    response = client.get("/publisher/")
    assert response.status_code == 302 and "/account/login" in response.location


def test_login_redirect_refuses_control_characters(app, world):
    for target in ("/\t/evil.example/x", "/\n/evil.example", "/%09/evil.example"):
        client = app.test_client()
        response = post_form(client, "/account/login?" + __import__("urllib.parse").parse.urlencode({"next": target}),
                             {"email": world["admin"].email, "password": PASSWORD}, form_page="/account/login")
        assert response.status_code == 302
        assert "evil.example" not in response.location or response.location.startswith("/%09"), target


# --- login: the same refusal whatever the reason -------------------------------------------

FLASH_RE = re.compile(r'<div class="flash error"[^>]*>([^<]*)</div>')


def _refusal(client, email: str, password: str) -> str:
    page = post_form(client, "/account/login?lang=en", {"email": email, "password": password},
                     form_page="/account/login").get_data(as_text=True)
    found = FLASH_RE.findall(page)
    assert found, page[:300]
    return found[0]


def test_a_refused_login_never_tells_whether_the_account_exists_or_is_locked(app, world, session):
    client = app.test_client()
    known = world["regulator"].email
    unknown_answers = {_refusal(client, "nobody@example.com", "wrong-password-1") for _ in range(7)}
    known_answers = {_refusal(client, known, "wrong-password-1") for _ in range(7)}  # locked after 5
    locked_right_password = _refusal(client, known, PASSWORD)
    assert len(unknown_answers | known_answers | {locked_right_password}) == 1
    assert "locked for 15 minutes" in locked_right_password
    session.expire_all()
    assert session.get(User, world["regulator"].id).locked_until is not None


# --- passwords ---------------------------------------------------------------------------

@pytest.mark.parametrize("password,email,name", [
    ("aaaaaaaaaaaa", "", ""),
    ("1111111111", "", ""),
    ("ab12ab12ab12", "", ""),
    ("Password123!", "", ""),
    ("password2024", "", ""),
    ("!Qwertyuiop1", "", ""),
    ("1234567890a", "", ""),
    ("woaini1314520", "", ""),
    ("1qaz2wsx3edc", "", ""),
    ("zhangsan-2024!", "zhangsan@cosco.example", ""),
    ("Feereg-2026-ok", "", ""),
    ("港口收费abc12345", "", ""),
    ("lixiaoming#77", "", "Li Xiaoming"),
    ("张伟abcd12345", "", "张伟"),
    ("short-1", "", ""),
])
def test_weak_passwords_are_refused(app, password, email, name):
    assert passwords.problems(password, email, name), password


@pytest.mark.parametrize("password", ["correct-horse-9", "Tide-table-2027", "Kx7#mP2!qLw", "盐田港-集装箱-42"])
def test_reasonable_passwords_pass(app, password):
    assert passwords.problems(password, "zhang.san@cosco.example", "Zhang San") == []


def test_registration_refuses_a_weak_password_in_both_languages(client, session):
    from .test_web_publisher import register_data

    data = register_data()
    data.update(password="Password123!", password_again="Password123!")
    en = post_form(client, "/account/register?lang=en", data, form_page="/account/register").get_data(as_text=True)
    assert "passwords tried first in any attack" in en
    zh = post_form(client, "/account/register?lang=zh", data, form_page="/account/register").get_data(as_text=True)
    assert "攻击者最先尝试的密码之一" in zh
    assert session.scalar(select(User).where(User.email == data["email"])) is None


def test_hashes_are_argon2id_at_the_rfc_9106_low_memory_cost():
    from argon2 import Type

    strong = passwords.STRONG
    assert strong.type is Type.ID and strong.time_cost >= 3 and strong.memory_cost >= 64 * 1024
    assert passwords.STRONG.hash("x").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_hash_with_old_parameters_is_replaced_at_login(app, world, session):
    from argon2 import PasswordHasher

    user = session.get(User, world["regulator"].id)
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=2).hash(PASSWORD)
    user.password_hash = old
    session.commit()
    client = app.test_client()
    login(client, user.email)
    session.expire_all()
    renewed = session.get(User, user.id).password_hash
    assert renewed != old and not passwords.needs_rehash(renewed)
    assert accounts.password_matches(session.get(User, user.id), PASSWORD)
    # The session of that login is stamped with the new hash: it goes on working.
    assert client.get("/regulator/").status_code == 200


# --- rate limits ---------------------------------------------------------------------------

LIMITS = {"SEARCH_RATE_LIMIT": "2 per minute", "COMPARE_RATE_LIMIT": "2 per minute", "QUOTE_RATE_LIMIT": "2 per minute",
          "API_RATE_LIMIT": "2 per minute", "LOGIN_RATE_LIMIT": "3 per minute", "LOGIN_ACCOUNT_RATE_LIMIT": "100 per minute",
          "COMPLAINT_RATE_LIMIT": "1 per minute", "FORM_RATE_LIMIT": "5 per minute"}


@contextmanager
def limited_app(migrated, tmp_path, **overrides):
    """An app with rate limits on (the suite runs with them off), on the test database."""
    from feereg import create_app

    from .conftest import IsolatedClient, _empty_tables, _test_config

    app = create_app({**_test_config(migrated, tmp_path), "RATELIMIT_ENABLED": True, **LIMITS, **overrides})
    app.test_client_class = IsolatedClient
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            _empty_tables()
            db.engine.dispose()


def from_address(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


QUOTE = "port=YANTIAN&direction=export&count_20=1&bills=1"
#: (first path, second path sharing its allowance): the third request gets 429.
LIMITED_PAGES = [
    ("/search?q=THC", "/search/download.csv?q=THC"),
    ("/compare/DOC", "/compare/DOC/download.csv"),
    ("/quote/results?" + QUOTE, "/quote/results?" + QUOTE + "&bills=2"),
    ("/api/v1/fee-types", "/api/v1/firms"),
]


def test_costly_pages_and_the_api_are_rate_limited_per_address(migrated, tmp_path):
    with limited_app(migrated, tmp_path) as app:
        for first, second in LIMITED_PAGES:
            client = app.test_client()
            # Answered, whatever the answer (an empty registry has no search index yet).
            assert client.get(first).status_code != 429, first
            assert client.get(second).status_code != 429, second
            refused = client.get(first)
            assert refused.status_code == 429, first
            assert 0 < int(refused.headers["Retry-After"]) <= 60
            if first.startswith("/api/"):
                assert refused.is_json and refused.get_json()["status"] == 429
            else:
                page = refused.get_data(as_text=True)
                assert re.search(r"请求过于频繁；请等待 \d+ 秒后再试。", page), page[-800:]
                english = client.get(first + ("&" if "?" in first else "?") + "lang=en").get_data(as_text=True)
                assert re.search(r"Too many requests; wait \d+ seconds and try again\.", english)
            # Another address has its own allowance.
            assert app.test_client().get(first, **from_address("127.0.0.2")).status_code != 429, first


def test_login_is_limited_per_address(migrated, tmp_path):
    with limited_app(migrated, tmp_path) as app:
        make_user("regulator", email="throttled@example.com")
        db.session.commit()
        client = app.test_client()
        for n in range(3):
            assert post_form(client, "/account/login", {"email": f"x{n}@example.com", "password": "wrong-password-1"}
                             ).status_code == 200
        assert post_form(client, "/account/login", {"email": "throttled@example.com", "password": PASSWORD}
                         ).status_code == 429
        assert post_form(app.test_client(), "/account/login", {"email": "throttled@example.com", "password": PASSWORD},
                         **from_address("127.0.0.2")).status_code == 302


@pytest.mark.parametrize("email", ["known@example.com", "unknown@example.com"])
def test_login_is_limited_per_account_known_or_not(migrated, tmp_path, email):
    with limited_app(migrated, tmp_path, LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per minute") as app:
        make_user("regulator", email="known@example.com")
        db.session.commit()
        for n, address in enumerate(("127.0.0.11", "127.0.0.12", "127.0.0.13")):
            client = app.test_client()
            # The address of the form page and of the post: a different client each time.
            client.environ_base["REMOTE_ADDR"] = address
            response = post_form(client, "/account/login", {"email": email.upper() if n else email,
                                                             "password": "wrong-password-1"})
            assert response.status_code == (429 if n == 2 else 200), (email, address)
        other = app.test_client()
        other.environ_base["REMOTE_ADDR"] = "127.0.0.13"
        assert post_form(other, "/account/login", {"email": "else@example.com", "password": "x"}).status_code == 200


def test_complaints_filed_are_limited_but_corrections_are_not(migrated, tmp_path):
    with limited_app(migrated, tmp_path) as app:
        firm = make_firm()
        db.session.commit()
        client = app.test_client()
        complaint = {"firm": firm.credit_code, "fee_name": "换单费", "amount": "300", "currency": "CNY",
                     "charged_on": registry.today().isoformat(), "description": "发票 1"}
        for _ in range(2):  # a typo in the amount: not filed, not counted
            assert post_form(client, "/complaints/new", {**complaint, "amount": "abc"}).status_code == 200
        assert post_form(client, "/complaints/new", complaint).status_code == 200
        assert post_form(client, "/complaints/new", complaint).status_code == 429
        count = db.session.scalar(select(__import__("sqlalchemy").func.count()).select_from(Complaint))
        assert count == 1


def test_rate_limits_come_from_the_environment():
    found = from_environment({f"FEEREG_{key}": value for key, value in LIMITS.items()} |
                             {"FEEREG_REDIS_URL": "redis://127.0.0.1:6379/15"})
    assert {key: found[key] for key in LIMITS} == LIMITS
    assert found["REDIS_URL"] == "redis://127.0.0.1:6379/15"


def test_rate_limits_are_counted_in_redis_when_it_is_configured(migrated, tmp_path):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required in CI and unreachable: {exc}")
        warnings.warn(f"SKIPPING the Redis rate-limit test: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    # An address of this test only: its counters are the keys that name it.
    address = f"127.{uuid.uuid4().int % 250 + 2}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    try:
        with limited_app(migrated, tmp_path, REDIS_URL="redis://127.0.0.1:6379/15") as app:
            assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/15"
            web = app.test_client()
            statuses = [web.get("/compare/DOC", **from_address(address)).status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
            assert [key for key in client.scan_iter(f"*{address}*") if b"compare" in key]
    finally:
        for key in client.scan_iter(f"*{address}*"):
            client.delete(key)
