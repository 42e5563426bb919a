"""Every form of feereg/forms/, submitted through its real page with generated values: no
server error, and a rejected submission changes nothing in the database.

The pages are found, not listed: each rule of the app's url_map whose view builds a form
class is a page of that form, and its arguments are filled from a small registry. A form
class that no page here submits fails the test of that class, so a new form is fuzzed (or
noticed) without editing this file. POST forms are posted logged in as the page's role with
the session's CSRF token (now and then a wrong one); GET forms (search, filters) are sent as
query strings. Field values are generated from each field's type: the options the page
offers, plausible values, and hostile ones (too long, control characters, formulas, wrong
types, impossible dates).

"Rejected" is read off the answer: a 4xx, the form shown again (200), or a redirect with an
error message flashed. Then every table's rows must be as before. Derandomized, few examples."""
from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import pkgutil
import re
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from werkzeug.routing import IntegerConverter
from wtforms import fields as wtf
from wtforms.fields.core import UnboundField

import feereg.forms
from feereg.extensions import db
from feereg.forms.base import GetForm, MultiCheckboxField
from feereg.models import FeeItemVersion
from feereg.services import api_tokens, complaints, imports, registry

from .audit_factories import make_flag
from .factories import PASSWORD, make_firm, make_user, publish

EXAMPLES = 12
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def form_classes() -> dict[str, type]:
    found = {}
    for module_info in pkgutil.iter_modules(feereg.forms.__path__):
        module = importlib.import_module(f"feereg.forms.{module_info.name}")
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, FlaskForm) and obj.__module__ == module.__name__
                    and not name.startswith("_")
                    and obj not in (feereg.forms.base.BaseForm, GetForm)):
                found[name] = obj
    return found


FORMS = form_classes()


# --- the world the pages act on ---------------------------------------------------------------

@pytest.fixture
def world(app, session):
    firm = make_firm("shipping_agent", ports=("YANTIAN",))
    publisher = make_user("publisher", firm)
    item = publish(firm, publisher, registry.today() - timedelta(days=5))
    draft = publish(firm, publisher, registry.today() - timedelta(days=5), fee_type="THC", name_zh="码头操作费",
                    unit="per_container", container_size="40", amount="800")
    regulator = make_user("regulator")
    admin = make_user("admin")
    target_firm = make_firm("offport_yard")
    target_user = make_user("publisher", target_firm)
    flag = make_flag(firm, "PEER_OUTLIER", "high", status="confirmed", item=item)
    complaint, _ = complaints.file_complaint(session, {
        "firm": firm, "fee_name": "文件费", "amount": "500", "currency": "CNY",
        "charged_on": registry.today() - timedelta(days=3), "description": "发票 1", "contact": ""})
    complaints.forward(session, complaint, regulator, "请说明")
    token_row, _token = api_tokens.create_token(session, regulator, "script")
    account = make_user("publisher", firm)  # changes its own password
    pending = imports.stash_upload(session, publisher, "fees.csv",
                                   f"credit_code,name_zh,amount\n{firm.credit_code},文件费,460\n".encode())
    session.commit()
    return {"firm": firm, "publisher": publisher, "item": item, "draft": draft, "regulator": regulator,
            "admin": admin, "target_firm": target_firm, "target_user": target_user, "flag": flag,
            "complaint": complaint, "token_row": token_row, "pending": pending, "account": account}


#: How a page's URL arguments are filled; a rule with an argument not here is not used.
URL_ARGS = {
    "item_id": lambda w, rule: w["draft"].id,
    "action": lambda w, rule: "publish",
    "token": lambda w, rule: w["pending"].token,
    "flag_id": lambda w, rule: w["flag"].id,
    "complaint_id": lambda w, rule: w["complaint"].id,
    "code": lambda w, rule: w["firm"].credit_code,
    "token_id": lambda w, rule: w["token_row"].id,
    "firm_id": lambda w, rule: w["target_firm"].id,
    "user_id": lambda w, rule: w["target_user"].id,
}
ROLES = {"publisher": "publisher", "regulator": "regulator", "admin": "admin"}
#: Rejected logins are written down by design (the audit trail, the failed-attempt count).
ALLOWED_WRITES = {"LoginForm": {"audit_event", "user", "login_attempt"}}


def pages_of(app, form_name: str) -> list:
    """(rule, methods) of every page whose view builds the form."""
    found = []
    pattern = re.compile(rf"\b{form_name}\(")
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        try:
            source = inspect.getsource(inspect.unwrap(view))
        except (OSError, TypeError):
            continue
        if pattern.search(source) and set(rule.arguments) <= set(URL_ARGS) | {"fmt"}:
            found.append(rule)
    return found


def build_url(app, rule, world) -> str:
    values = {name: URL_ARGS[name](world, rule) for name in rule.arguments if name != "fmt"}
    if "fmt" in rule.arguments:
        return ""  # a download of the same form: its page is fuzzed
    with app.test_request_context():
        from flask import url_for
        return url_for(rule.endpoint, **values)


# --- what a page offers ------------------------------------------------------------------------

class _Options(HTMLParser):
    """name -> the values a page offers for it (options, radios, checkboxes, hidden inputs)."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self.csrf = None
        self._select = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select:
            self.values.setdefault(self._select, []).append(a.get("value") or "")
        elif tag == "input" and a.get("name"):
            if a["name"] == "csrf_token":
                self.csrf = self.csrf or a.get("value")
            elif a.get("type") in ("radio", "checkbox", "hidden", "submit"):
                self.values.setdefault(a["name"], []).append(a.get("value") or "y")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def read_page(client, url: str) -> _Options:
    response = client.get(url)
    assert response.status_code < 500, (url, response.status_code)
    parser = _Options()
    parser.feed(response.get_data(as_text=True))
    return parser


# --- values for each kind of field --------------------------------------------------------------

CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))
HOSTILE = ["", " ", "=1+1", "<script>alert(1)</script>", "' OR 1=1 --", "\x00", "a\x00b", "\u202e", "NaN",
           "-1", "1e400", "9" * 30, "x" * 5000, "详见附件", "１２３", "%s%n", "{{7*7}}", "\r\n\r\n", "0"]
PLAUSIBLE = {
    "amount": ["450", "12.5", "85", "0.01"], "tax_rate": ["6", "13", ""], "name_zh": ["文件费", "码头操作费"],
    "fee_name": ["文件费", "换单费"], "name_en": ["Documentation fee"], "email": ["new@example.com"],
    "contact_email": ["ops@example.com"], "contact_phone": ["0755-12345678"], "password": [PASSWORD],
    "password_again": [PASSWORD], "tiers": ["free:7;8-14:85;15-:170", ""], "note": ["核实无误"],
    "answer": ["已整改"], "reason": ["调价"], "text": ["请说明"], "description": ["发票 No. 1"],
    "name": ["张三", "weekly audit script"], "reference": ["深发改〔2025〕1号"],
    "lines": ["91440300MA5G00001X,文件费,per_bl,1,500,2025-06-01"], "firm": [],
    "effective_from": [], "charged_on": [],
}


def text_values(name: str, offered: list[str], max_length: int = 60):
    plausible = PLAUSIBLE.get(name, []) + offered
    options = [st.text(CHARS, max_size=max_length), st.sampled_from(HOSTILE)]
    if plausible:
        options.insert(0, st.sampled_from(plausible))
    return st.one_of(*options)


DATES = st.one_of(st.dates().map(str), st.sampled_from(["", "2026-02-30", "0001-01-01", "9999-12-31", "99999-01-01",
                                                        "2025/6/1", "today", "\x00"]))
INTEGERS = st.one_of(st.integers(-10, 10**12).map(str), st.sampled_from(["", "x", "1.5", "9" * 40, "٣", "-0"]))


def field_values(name: str, unbound: UnboundField, offered: list[str], extra: dict):
    kind = unbound.field_class
    if issubclass(kind, (wtf.SubmitField,)):
        return st.sampled_from([None, offered[0] if offered else "y"])
    if issubclass(kind, wtf.BooleanField):
        return st.sampled_from([None, "y", "false", "\x00"])
    if issubclass(kind, (wtf.DateField, wtf.DateTimeField)):
        return st.one_of(st.sampled_from(extra["dates"]), DATES)
    if issubclass(kind, (wtf.IntegerField, wtf.DecimalField, wtf.FloatField)):
        return st.one_of(st.sampled_from(offered or ["1"]), INTEGERS)
    if issubclass(kind, (wtf.SelectMultipleField, MultiCheckboxField)):
        return st.lists(st.one_of(st.sampled_from(offered or [""]), st.text(CHARS, max_size=8)), max_size=4)
    if issubclass(kind, (wtf.SelectField, wtf.RadioField)):
        return st.one_of(st.sampled_from(offered or [""]), st.sampled_from(offered or [""]),
                         st.text(CHARS, max_size=10), st.sampled_from(["", "\x00"]))
    if issubclass(kind, wtf.FileField):
        return st.one_of(st.none(), st.tuples(
            st.one_of(st.sampled_from(extra["files"]), st.binary(max_size=400)),
            st.sampled_from(["fees.csv", "fees.xlsx", "fees.exe", "", "../../etc/passwd", "费用.CSV", "a\x00.csv"])))
    return text_values(name, offered)


def unbound_fields(form_class) -> dict[str, UnboundField]:
    return {name: value for name, value in inspect.getmembers(form_class) if isinstance(value, UnboundField)}


# --- the database, before and after ---------------------------------------------------------------

def snapshot() -> dict[str, str]:
    """A digest of every table's rows: any insert, update or delete shows."""
    tables = db.metadata.sorted_tables
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # one round trip, not one per table
            digests = " UNION ALL ".join(
                f"SELECT '{t.name}', md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) FROM \"{t.name}\" r"
                for t in tables)
            return dict(conn.execute(text(digests)).all())
        return {t.name: hashlib.sha256(repr(sorted(map(repr, conn.execute(select(t)).all()))).encode()).hexdigest()
                for t in tables}


def login_as(client, user) -> None:
    page = read_page(client, "/account/login")
    response = client.post("/account/login", data={"email": user.email, "password": PASSWORD,
                                                   "csrf_token": page.csrf})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]


#: A page answering 200 that did what was asked says so (the form is not shown again with errors).
ACCEPTED_PAGE = re.compile(r'class="flash success"|id="new-token"')


def rejected(client, response, form_page: str) -> bool:
    """4xx; the form shown again (200, unless the page says it was done: a new API token is
    shown once, on the page itself); or a redirect with an error message, or back to the
    form's page without saying it was done (an action button that ignores a bad choice). A
    redirect elsewhere (an upload on to its preview) is the form accepted."""
    if response.status_code >= 400:
        return True
    if response.status_code == 200:
        return not ACCEPTED_PAGE.search(response.get_data(as_text=True))
    with client.session_transaction() as session:
        categories = {category for category, _message in session.get("_flashes", [])}
    back = urlsplit(response.headers.get("Location", "")).path == urlsplit(form_page).path
    return "error" in categories or (back and not categories & {"success", "info"})


# --- the tests -----------------------------------------------------------------------------------

def test_every_form_survives_generated_input_and_a_rejection_writes_nothing(app, world):
    """One world per database for all the forms (building it is most of the cost); each form's
    failure is collected, so one run names every form that fails."""
    clients = {}
    failures = []
    for form_name in sorted(FORMS):
        try:
            fuzz_form(app, world, clients, form_name)
        except Exception as failure:  # noqa: BLE001 - reported with the others below
            failures.append(f"{form_name}: {type(failure).__name__}: {str(failure)[:1500]}")
    assert not failures, "\n\n".join(failures)


def client_for(app, world, clients: dict, role: str | None):
    """A client per role, logged in once (None: anonymous; "account": any logged-in person)."""
    if role not in clients:
        client = app.test_client()
        user = {"account": world["account"]}.get(role) or world.get(role or "")
        if user is not None:
            login_as(client, user)
        clients[role] = client
    return clients[role]


def fuzz_form(app, world, clients: dict, form_name: str) -> None:
    form_class = FORMS[form_name]
    is_get = issubclass(form_class, GetForm)
    pages = [rule for rule in pages_of(app, form_name)
             if ("GET" if is_get else "POST") in rule.methods and build_url(app, rule, world)]
    assert pages, "no page of the app submits this form (or its URL cannot be built here)"
    rule = pages[0]
    url = build_url(app, rule, world)
    role = ROLES.get(rule.endpoint.split(".")[0])
    client = client_for(app, world, clients, role)
    # The page that shows the form: itself, or (for a POST-only action) a GET page of its blueprint
    # that builds the same form.
    show = url if "GET" in rule.methods else next(
        build_url(app, r, world) for r in pages_of(app, form_name) if "GET" in r.methods
        and r.endpoint.split(".")[0] == rule.endpoint.split(".")[0])
    page = read_page(client, show)
    if page.csrf is None and not is_get and not role:
        client = client_for(app, world, clients, "account")  # a page for anyone logged in (a password change)
        page = read_page(client, show)
    assert is_get or page.csrf, f"no CSRF token on {show}"
    fields = unbound_fields(form_class)
    extra = {"dates": [str(registry.today()), str(registry.today() + timedelta(days=40)), "2020-01-01"],
             "files": [f"credit_code,name_zh,amount\n{world['firm'].credit_code},铅封费,50\n".encode(),
                       b"\xef\xbb\xbfcredit_code,amount\n", b"PK\x03\x04junk"]}
    strategies = {name: field_values(name, unbound, page.values.get(name, []), extra)
                  for name, unbound in fields.items()}
    allowed = ALLOWED_WRITES.get(form_name, set())
    csrf = page.csrf
    # The database as the next submission finds it: a rejected one must leave it so.
    state = {"tables": None if is_get else snapshot(), "rejected": 0}

    @FUZZ
    @given(values=st.fixed_dictionaries({}, optional=strategies), good_token=st.sampled_from([True] * 7 + [False]))
    def submit(values, good_token):
        data = {}
        for name, value in values.items():
            if value is None:
                continue
            data[name] = (io.BytesIO(value[0]), value[1]) if isinstance(value, tuple) else value
        if is_get:
            response = client.get(url, query_string={k: v for k, v in data.items() if not isinstance(v, tuple)})
            assert response.status_code < 500, (values, response.status_code)
            return
        data["csrf_token"] = csrf if good_token else "forged" + (csrf or "")[6:]
        response = client.post(url, data=data, content_type="multipart/form-data")
        assert response.status_code < 500, (values, response.get_data(as_text=True)[:500])
        if not good_token:
            assert response.status_code == 400
        after = snapshot()
        if rejected(client, response, show):
            state["rejected"] += 1
            changed = {name for name, digest in after.items() if state["tables"][name] != digest} - allowed
            assert not changed, f"rejected ({response.status_code}) but changed {changed}: {values}"
        state["tables"] = after
        with client.session_transaction() as session:
            session.pop("_flashes", None)  # read: the next example's verdict is its own

    submit()
    assert is_get or state["rejected"], "no submission was rejected, so none was checked"


def test_the_discovery_finds_the_forms_it_should():
    """A guard on form_classes(): the forms of each area are there, the base classes are not."""
    assert {"FeeItemForm", "ImportUploadForm", "ComplaintForm", "FlagDecisionForm", "LoginForm",
            "SearchForm", "ShipmentForm"} <= set(FORMS)
    assert "BaseForm" not in FORMS and "GetForm" not in FORMS
    assert all(unbound_fields(cls) or name == "RevokeTokenForm" for name, cls in FORMS.items())


# --- what the fuzzing found, kept as plain tests ------------------------------------------------

#: "contains control characters", as the pages say it (Chinese by default).
CONTROL_MESSAGE = "含有控制字符"


def test_a_nul_in_any_text_field_is_a_field_error_not_a_database_error(client, world):
    """PostgreSQL refuses a NUL in a text value with an error: it was a 500 on the login, an
    answer, a token's name and an uploaded file's name."""
    from .conftest import login, post_form

    response = post_form(client, "/account/login", {"email": "a\x00b@example.com", "password": "x"})
    assert response.status_code == 200 and CONTROL_MESSAGE in response.get_data(as_text=True)
    login(client, world["regulator"].email)
    before = snapshot()
    response = post_form(client, "/regulator/tokens", {"name": "script\x00"})
    assert response.status_code == 200 and CONTROL_MESSAGE in response.get_data(as_text=True)
    assert snapshot() == before


def test_an_upload_whose_name_has_a_control_character_is_refused(client, world):
    from .conftest import login, post_form

    login(client, world["publisher"].email)
    before = snapshot()
    response = post_form(client, "/publisher/import", {"file": (io.BytesIO(b"credit_code,amount\n"), "f\x00.csv")},
                         content_type="multipart/form-data")
    assert response.status_code == 200 and CONTROL_MESSAGE in response.get_data(as_text=True)
    assert snapshot() == before


@pytest.mark.parametrize("query,status", [("date_to=9999-12-31", 200), ("date_from=0001-01-01", 200),
                                          ("rule=x", 200), ("status=x", 200), ("firm=9144%1F", 200),
                                          ("rule=%00", 400), ("category=%00", 400), ("firm=9144%00", 400)])
def test_the_audit_report_shows_a_refused_filter_instead_of_failing(client, world, query, status):
    """date.max + 1 day overflowed; a NUL in a choice reached PostgreSQL (now refused for every
    page before its view, feereg/web.py); a refused value no longer filters."""
    from .conftest import login

    login(client, world["regulator"].email)
    response = client.get(f"/regulator/report?{query}")
    assert response.status_code == status
    if status == 200:
        assert 'class="error"' in response.get_data(as_text=True)
    assert client.get(f"/regulator/report.csv?{query}").status_code in (200, 400)


def test_every_page_answers_a_hostile_address_without_a_server_error(app, world):
    """Each GET page of the url_map, as its blueprint's role, with a row number past the
    database's INTEGER, a NUL in a path segment and in a query argument (both reached
    PostgreSQL as errors on a dozen pages: a firm's page, compare, feeds, the regulator's)."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # count a server error as the 500 a visitor sees
    clients = {}
    failures = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        role = ROLES.get(rule.endpoint.split(".")[0])
        client = client_for(app, world, clients, role or "publisher")
        path = rule.rule
        for name, converter in rule._converters.items():
            if name == "fmt":
                value = "csv" if "csv" in str(rule.rule) else "pdf"
            elif isinstance(converter, IntegerConverter):
                value = str(2**31)
            else:
                value = "a%00b"
            path = re.sub(rf"<[^>]*\b{name}>", value, path)
        for address in ([path] if rule.arguments else []) + [f"{re.sub(r'<[^>]*>', '1', rule.rule)}?q=%00&page=%00"]:
            status = client.get(address).status_code
            if status >= 500:
                failures.append(f"{rule.endpoint}: {address} -> {status}")
    assert not failures, "\n".join(failures)
    assert client_for(app, world, clients, None).get(f"/items/{2**31}").status_code == 404


def _zip_with(flag_bits: int = 0, method: int | None = None, doctype: bool = False) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", ('<!DOCTYPE x [<!ENTITY e "e">]>' if doctype else "")
                         + '<worksheet><dimension ref="A1:B99999"/></worksheet>')
    data = bytearray(out.getvalue())
    for signature, flags_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = 0
        while (at := bytes(data).find(signature, at)) >= 0:
            data[at + flags_at] |= flag_bits
            if method is not None:
                data[at + method_at] = method
            at += 4
    return bytes(data)


@pytest.mark.parametrize("content", [_zip_with(flag_bits=1), _zip_with(method=99), _zip_with(doctype=True),
                                     b"PK\x03\x04junk"], ids=["encrypted", "unknown-compression", "dtd", "junk"])
def test_a_hostile_workbook_uploaded_through_the_page_is_refused_with_a_reason(client, world, content):
    """The upload page sizes a workbook up (is it a job?) before the check reads it: an
    encrypted part or an unknown compression method raised there, a server error."""
    from .conftest import login, post_form

    login(client, world["publisher"].email)
    response = post_form(client, "/publisher/import", {"file": (io.BytesIO(content), "fees.xlsx")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert response.status_code == 200
    assert 'class="notice error" role="alert"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(FeeItemVersion)) == 2  # the world's two
