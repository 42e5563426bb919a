"""Every route of the application × every role: who may use it, and what everyone else gets.

TABLE names every endpoint of `app.url_map` (all blueprints) and, for each method the rule
accepts, what each of five visitors gets: anonymous, the publisher of firm A, the publisher
of firm B, a regulator and an admin. URL parameters come from a small world of two firms,
each with a published item, a published item with unpublished changes and a draft, flags,
complaints, a pending import and a regulator's API token; ids in a publisher's URL are always
firm A's, so firm B's publisher is the one trying another firm's ids.

The walk (one app, one client per visitor, built once per database):
1. every request the table says is refused, GET or POST (a POST carries a real payload and a
   valid CSRF token, so only the access check stands in the way), each checked to leave the
   database exactly as it was;
2. every GET the table allows, whose pages must satisfy the Content-Security-Policy and show
   no firm's drafts to anyone but that firm's publisher;
3. every POST the table allows, with the same payloads: those marked as writing must change
   the database (so the payloads sent in step 1 were ones that would have worked);
4. logging out.

A route missing from the table fails test_every_route_is_in_the_table: a new page is
decided on before it ships.
"""
from __future__ import annotations

import hashlib
import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Callable
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import text

from feereg import create_app
from feereg.extensions import db
from feereg.services import api_tokens, complaints, imports, registry

from .audit_factories import make_flag
from .conftest import IsolatedClient, _empty_tables, _test_config, csrf_token, login
from .factories import item_values, make_firm, make_user, publish
from .test_imports import csv_bytes, row
from .test_web_publisher import item_form

ROLES = ("anonymous", "publisher_a", "publisher_b", "regulator", "admin")


@dataclass(frozen=True)
class Expect:
    status: int
    allowed: bool
    #: A refusal that sends the visitor to the login page.
    login: bool = False
    #: An allowed POST that must change the database (its payload is a real change).
    writes: bool = False

    def __str__(self):
        if self.login:
            return "302 to /account/login"
        return f"{self.status}{' (writes)' if self.writes else ''}{'' if self.allowed else ' (refused)'}"


OK = Expect(200, True)
ELSEWHERE = Expect(302, True)  # allowed, and sent on to another page (not the login page)
WRITES = Expect(302, True, writes=True)
WRITES_HERE = Expect(200, True, writes=True)  # allowed, changes something, answers with a page
LOGIN = Expect(302, False, login=True)
FORBIDDEN = Expect(403, False)
HIDDEN = Expect(404, False)  # another firm's or another person's row: "not found", ids reveal nothing
NO_TOKEN = Expect(401, False)  # the API's regulator endpoints read a bearer token, never the cookie
DECLINED = Expect(200, False)  # the page answers, the service refuses; nothing changes
UNFILLED = Expect(400, True)  # allowed: a form sent without its fields, answered with their errors


def access(anonymous, publisher_a, publisher_b, regulator, admin) -> dict[str, Expect]:
    return dict(zip(ROLES, (anonymous, publisher_a, publisher_b, regulator, admin)))


PUBLIC = access(OK, OK, OK, OK, OK)
PUBLISHERS = access(LOGIN, OK, OK, FORBIDDEN, FORBIDDEN)
FIRM_A = access(LOGIN, OK, HIDDEN, FORBIDDEN, FORBIDDEN)
REGULATORS = access(LOGIN, FORBIDDEN, FORBIDDEN, OK, OK)
ADMINS = access(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK)
API_REGULATOR = access(NO_TOKEN, NO_TOKEN, NO_TOKEN, OK, NO_TOKEN)  # the regulator sends its token


@dataclass
class Route:
    #: URL parameters, from the world.
    args: Callable[[SimpleNamespace], dict] = lambda w: {}
    #: What each visitor gets for GET, and for POST (None: the rule does not take it).
    get: dict[str, Expect] | None = None
    post: dict[str, Expect] | None = None
    #: The query string of the GET.
    query: Callable[[SimpleNamespace], dict] = lambda w: {}
    #: The form a browser would post (the CSRF token is added), built when sent.
    payload: Callable[[SimpleNamespace], dict] = lambda w: {}
    multipart: bool = False


def _lock(item_id: int) -> str:
    return str(db.session.scalar(text("select lock_version from fee_item where id = :id"), {"id": item_id}))


TABLE: dict[str, Route] = {
    # --- public pages -------------------------------------------------------------------
    "public.home": Route(get=PUBLIC),
    "public.directory": Route(get=PUBLIC, query=lambda w: {"q": "测试"}),
    "public.firm": Route(lambda w: {"code": w.code_a}, get=PUBLIC),
    "public.firm_history": Route(lambda w: {"code": w.code_a}, get=PUBLIC),
    "public.firm_schedule_file": Route(lambda w: {"code": w.code_a, "fmt": "csv"}, get=PUBLIC),
    "public.item_history": Route(lambda w: {"item_id": w.item_a}, get=PUBLIC),
    "public.catalog": Route(get=PUBLIC),
    "public.search": Route(get=PUBLIC, query=lambda w: {"q": "标记"}),
    "public.search_file": Route(lambda w: {"fmt": "csv"}, get=PUBLIC, query=lambda w: {"q": "标记"}),
    "public.compare_index": Route(get=PUBLIC),
    "public.compare": Route(lambda w: {"code": "DOC"}, get=PUBLIC),
    "public.compare_file": Route(lambda w: {"code": "DOC", "fmt": "csv"}, get=PUBLIC),
    "public.quote_form": Route(get=PUBLIC),
    "public.quote_results": Route(get=PUBLIC, query=lambda w: SHIPMENT),
    # Without a shipment: the form again, 400, for everyone (a PDF per visitor costs seconds;
    # tests/test_exports_pdf.py renders it).
    "public.quote_file": Route(lambda w: {"fmt": "pdf"}, get=access(*[UNFILLED] * 5)),
    "public.complaint_new": Route(get=PUBLIC, post=PUBLIC),  # anyone may complain (rate-limited)
    "public.invoice_check_page": Route(get=PUBLIC, post=PUBLIC),
    "public.open_data": Route(get=PUBLIC),
    "public.open_data_file": Route(lambda w: {"name": "items.csv"}, get=PUBLIC),
    "public.feed_registry": Route(get=PUBLIC),
    "public.feed_firm": Route(lambda w: {"code": w.code_a}, get=PUBLIC),
    "public.feed_fee_type": Route(lambda w: {"code": "DOC"}, get=PUBLIC),
    "public.feed_port": Route(lambda w: {"port": "YANTIAN"}, get=PUBLIC),
    "public.api_docs": Route(get=PUBLIC),
    "static": Route(lambda w: {"filename": "site.css"}, get=PUBLIC),
    "health.healthz": Route(get=PUBLIC),  # for load balancers: says which component is down, never how
    # --- accounts -----------------------------------------------------------------------
    "account.login": Route(get=PUBLIC, post=PUBLIC),
    "account.register": Route(get=PUBLIC, post=PUBLIC),
    "account.password": Route(get=access(LOGIN, OK, OK, OK, OK), post=access(LOGIN, OK, OK, OK, OK)),
    # --- the open data API (read-only: no rule takes a write method) ----------------------
    "api.index": Route(get=PUBLIC),
    "api.openapi": Route(get=PUBLIC),
    "api.firms": Route(get=PUBLIC),
    "api.firm": Route(lambda w: {"code": w.code_a}, get=PUBLIC),
    "api.firm_versions": Route(lambda w: {"code": w.code_a}, get=PUBLIC),
    "api.fee_items": Route(get=PUBLIC),
    "api.fee_item": Route(lambda w: {"item_id": w.item_a}, get=PUBLIC),
    "api.fee_item_versions": Route(lambda w: {"item_id": w.item_a}, get=PUBLIC),
    "api.fee_types": Route(get=PUBLIC),
    "api.fee_type": Route(lambda w: {"code": "DOC"}, get=PUBLIC),
    "api.search": Route(get=PUBLIC, query=lambda w: {"q": "标记"}),
    "api.compare": Route(lambda w: {"code": "DOC"}, get=PUBLIC),
    "api.flags": Route(get=API_REGULATOR),
    "api.flag": Route(lambda w: {"flag_id": w.flag_a}, get=API_REGULATOR),
    "api.complaints": Route(get=API_REGULATOR),
    "api.complaint": Route(lambda w: {"complaint_id": w.complaint_a}, get=API_REGULATOR),
    # --- a firm's workspace: ids are firm A's ---------------------------------------------
    "publisher.schedule": Route(get=PUBLISHERS),
    "publisher.my_history": Route(get=access(LOGIN, ELSEWHERE, ELSEWHERE, FORBIDDEN, FORBIDDEN)),
    "publisher.audit": Route(get=PUBLISHERS),
    "publisher.complaints_list": Route(get=PUBLISHERS),
    "publisher.new_item": Route(
        get=PUBLISHERS, post=access(LOGIN, WRITES, WRITES, FORBIDDEN, FORBIDDEN),
        # The tampered fields name firm A: firm B's publisher still creates in its own firm.
        payload=lambda w: {**item_form(name_zh="矩阵新建费", publish="y"), "firm_id": w.firm_a,
                           "item_id": w.item_a}),
    "publisher.edit_item": Route(
        lambda w: {"item_id": w.item_a}, get=FIRM_A, post=access(LOGIN, WRITES, HIDDEN, FORBIDDEN, FORBIDDEN),
        payload=lambda w: {**item_form(amount="111"), "publish": "y", "lock_version": _lock(w.item_a)}),
    "publisher.item_action": Route(
        lambda w: {"item_id": w.draft_a, "action": "publish"}, get=FIRM_A,
        post=access(LOGIN, WRITES, HIDDEN, FORBIDDEN, FORBIDDEN),
        payload=lambda w: {"effective_from": registry.today().isoformat(), "lock_version": _lock(w.draft_a)}),
    "publisher.import_upload": Route(
        get=PUBLISHERS, post=access(LOGIN, WRITES, WRITES, FORBIDDEN, FORBIDDEN), multipart=True,
        payload=lambda w: {"file": (io.BytesIO(csv_bytes([row(w.code_a, amount="5")])), "a.csv")}),
    "publisher.import_preview": Route(
        lambda w: {"token": w.import_a}, get=FIRM_A, post=access(LOGIN, WRITES, HIDDEN, FORBIDDEN, FORBIDDEN),
        payload=lambda w: {"token": w.import_a, "fingerprint": "-", "discard": "y"}),
    "publisher.answer_flag": Route(
        lambda w: {"flag_id": w.flag_a}, post=access(LOGIN, WRITES, HIDDEN, FORBIDDEN, FORBIDDEN),
        payload=lambda w: {"answer": "已整改"}),
    "publisher.complaint": Route(
        lambda w: {"complaint_id": w.complaint_a}, get=FIRM_A,
        post=access(LOGIN, WRITES, HIDDEN, FORBIDDEN, FORBIDDEN), payload=lambda w: {"answer": "已退还"}),
    # --- the regulator's workspace (admins may act there too) ------------------------------
    "regulator.dashboard": Route(get=REGULATORS),
    "regulator.flags": Route(get=REGULATORS),
    "regulator.flags_file": Route(lambda w: {"fmt": "csv"}, get=REGULATORS),
    # The admin comes second: the flag is decided by then, so its page says so (200).
    "regulator.flag": Route(lambda w: {"flag_id": w.flag_open}, get=REGULATORS,
                            post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, OK),
                            payload=lambda w: {"decision": "dismiss", "note": "矩阵测试"}),
    "regulator.policy": Route(get=REGULATORS, post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, WRITES),
                              payload=lambda w: {"kind": "cap", "fee_type_code": "DOC", "amount": "2000",
                                                 "currency": "CNY", "effective_from": "2020-01-01"}),
    "regulator.report": Route(get=REGULATORS),
    "regulator.report_csv": Route(get=REGULATORS),
    "regulator.report_file": Route(lambda w: {"fmt": "xlsx"}, get=REGULATORS),
    "regulator.audit_log": Route(get=REGULATORS),
    "regulator.complaints_list": Route(get=REGULATORS),
    "regulator.complaint": Route(lambda w: {"complaint_id": w.complaint_r}, get=REGULATORS,
                                 post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, OK),
                                 payload=lambda w: {"step": "forward", "text": ""}),
    "regulator.compliance_cases": Route(get=REGULATORS),
    "regulator.firm_compliance": Route(lambda w: {"code": w.code_a}, get=REGULATORS,
                                       post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, OK),
                                       payload=lambda w: {"step": "warning", "text": "矩阵测试"}),
    # Tokens are the regulator's own: an admin may open the page but gets none, nor revokes one.
    "regulator.tokens": Route(get=REGULATORS, post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES_HERE, DECLINED),
                              payload=lambda w: {"name": "matrix"}),
    "regulator.revoke_token": Route(lambda w: {"token_id": w.token_id},
                                    post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, HIDDEN)),
    "regulator.report_pdf_job": Route(post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, WRITES)),
    # --- long jobs: a job is seen by its owner (and regulators' jobs by every regulator and
    # operator); another's is "not found". Ids: firm A's publisher's jobs, a regulator's report.
    "jobs.index": Route(get=access(LOGIN, OK, OK, OK, OK)),
    "jobs.show": Route(lambda w: {"job_id": w.job_queued}, get=access(LOGIN, OK, HIDDEN, HIDDEN, HIDDEN)),
    "jobs.status": Route(lambda w: {"job_id": w.job_queued}, get=access(LOGIN, OK, HIDDEN, HIDDEN, HIDDEN)),
    "jobs.download": Route(lambda w: {"job_id": w.job_report}, get=access(LOGIN, HIDDEN, HIDDEN, OK, OK)),
    "jobs.cancel": Route(lambda w: {"job_id": w.job_queued}, post=access(LOGIN, WRITES, HIDDEN, HIDDEN, HIDDEN)),
    "jobs.import_preview": Route(
        lambda w: {"job_id": w.job_import}, get=access(LOGIN, OK, HIDDEN, FORBIDDEN, FORBIDDEN),
        post=access(LOGIN, WRITES, HIDDEN, FORBIDDEN, FORBIDDEN),
        payload=lambda w: {"token": "-", "fingerprint": "-", "discard": "y"}),
    # One full scan at a time: the admin, second, is shown the regulator's.
    "jobs.scan": Route(get=REGULATORS, post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, ELSEWHERE)),
    "jobs.bulk": Route(post=access(LOGIN, FORBIDDEN, FORBIDDEN, WRITES, ELSEWHERE)),
    # --- operators ------------------------------------------------------------------------
    "admin.firms_list": Route(get=ADMINS),
    "admin.firm_status": Route(lambda w: {"firm_id": w.firm_b}, get=ADMINS,
                               post=access(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, WRITES),
                               payload=lambda w: {"status": "suspended", "reason": "矩阵测试"}),
    "admin.users": Route(get=ADMINS),
    "admin.user_active": Route(lambda w: {"user_id": w.spare_user},
                               post=access(LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN, WRITES),
                               payload=lambda w: {"action": "disable"}),
    # Last: it ends the session the walk uses (and records the logout).
    "account.logout": Route(post=access(LOGIN, WRITES, WRITES, WRITES, WRITES)),
}

SHIPMENT = {"port": "YANTIAN", "direction": "export", "count_20": "1", "bills": "1"}

#: Text of each firm's unpublished changes: only that firm's publisher may ever see it.
DRAFT_MARKERS = {
    "publisher_a": ("标记草稿甲费", "987.65", "876.54"),
    "publisher_b": ("标记草稿乙费", "765.43", "654.32"),
}


# --- the world ------------------------------------------------------------------------------

def build_world(session) -> SimpleNamespace:
    firm_a, firm_b = make_firm(), make_firm()
    pub_a, pub_b = make_user("publisher", firm_a), make_user("publisher", firm_b)
    spare = make_user("publisher", firm_a)
    regulator, admin = make_user("regulator"), make_user("admin")
    world = SimpleNamespace(firm_a=firm_a.id, firm_b=firm_b.id, code_a=firm_a.credit_code,
                            code_b=firm_b.credit_code, spare_user=spare.id,
                            users={"publisher_a": pub_a.id, "regulator": regulator.id},
                            emails={"publisher_a": pub_a.email, "publisher_b": pub_b.email,
                                    "regulator": regulator.email, "admin": admin.email})
    for key, firm, publisher in (("a", firm_a, pub_a), ("b", firm_b, pub_b)):
        name, draft_amount, pending_amount = DRAFT_MARKERS[f"publisher_{key}"]
        item = publish(firm, publisher)
        registry.update_draft(session, item, item_values(amount=pending_amount), publisher, None)
        draft = registry.create_draft(session, firm, item_values(
            fee_type="EIR", name_zh=name, unit="per_container", amount=draft_amount), publisher)
        setattr(world, f"item_{key}", item.id)
        setattr(world, f"draft_{key}", draft.id)
        setattr(world, f"import_{key}", imports.stash_upload(
            session, publisher, "x.csv", csv_bytes([row(firm.credit_code, amount="5")])).token)
    world.flag_a = make_flag(firm_a, status="confirmed", item=session.get(type(item), world.item_a)).id
    # Not on an item: the checks that run on each publish of the walk leave it open.
    world.flag_open = make_flag(firm_b, rule="UNDISCLOSED", fee_type_code="DOC").id
    complaint_a, _ = complaints.file_complaint(session, {
        "firm": firm_a, "fee_name": "换单费", "amount": "300", "currency": "CNY",
        "charged_on": registry.today(), "description": "发票 1", "contact": ""})
    complaints.forward(session, complaint_a, regulator, "")
    complaint_r, _ = complaints.file_complaint(session, {
        "firm": firm_a, "fee_name": "换单费", "amount": "300", "currency": "CNY",
        "charged_on": registry.today(), "description": "发票 2", "contact": ""})
    world.complaint_a, world.complaint_r = complaint_a.id, complaint_r.id
    token_row, world.token = api_tokens.create_token(session, regulator, "matrix")
    world.token_id = token_row.id
    session.commit()
    return world


def add_jobs(app, session, world) -> None:
    """Firm A's publisher's jobs — a big import checked, another still queued — and a
    regulator's report PDF, done. Run here, in this process: the app runs no job threads."""
    from feereg.models import User
    from feereg.services import audit_report, jobs
    from feereg.services.job_kinds import report_params

    publisher, regulator = (session.get(User, world.users[r]) for r in ("publisher_a", "regulator"))
    uploads = [imports.stash_upload(session, publisher, "big.csv", csv_bytes([row(world.code_a, amount="6")]))
               for _ in range(2)]
    checked = jobs.enqueue(session, "import.preview", publisher, {"token": uploads[0].token, "effective_from": ""})
    report = jobs.enqueue(session, "report.pdf", regulator, report_params(
        audit_report.report_filter(None, None, "", None, "", ""), "zh"))
    session.commit()
    for job in (checked, report):
        assert jobs.run_next(app, "matrix", job_id=job.id) == (job.id, "done")
    queued = jobs.enqueue(session, "import.preview", publisher, {"token": uploads[1].token, "effective_from": ""})
    session.commit()
    world.job_import, world.job_report, world.job_queued = checked.id, report.id, queued.id


def fingerprint() -> str:
    """Every row of every table, hashed: equal before and after means nothing changed."""
    digest = hashlib.sha256()
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            order = ", ".join(c.name for c in table.primary_key.columns) or "1"
            for record in conn.execute(text(f'SELECT * FROM "{table.name}" ORDER BY {order}')):
                digest.update(repr((table.name, tuple(record))).encode())
    return digest.hexdigest()


# --- what a page may contain under the CSP ---------------------------------------------------

class CspAudit(HTMLParser):
    """What the policy (script-src/style-src/img-src 'self', no inline anything, form-action
    'self', object-src 'none', base-uri 'self') would block in a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag in ("iframe", "frame", "object", "embed", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> handler")
            if name == "style":
                self.problems.append(f"<{tag} style=…>")
            if name in ("href", "src", "action", "formaction", "xlink:href") and value and \
                    value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:…>")
        external = {"script": "src", "img": "src", "link": "href", "form": "action", "input": "formaction"}
        where = external.get(tag)
        if where and attrs.get(where) and _is_external(attrs[where], allow_data=tag == "img"):
            self.problems.append(f"<{tag} {where}={attrs[where][:60]}> from elsewhere")

    handle_startendtag = handle_starttag


def _is_external(url: str, allow_data: bool) -> bool:
    if allow_data and url.startswith("data:"):
        return False
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) and parts.netloc not in ("localhost",)


def csp_problems(html: str) -> list[str]:
    audit = CspAudit()
    audit.feed(html)
    audit.close()
    return audit.problems


# --- the walk -------------------------------------------------------------------------------

@dataclass
class Outcome:
    endpoint: str
    method: str
    role: str
    url: str
    expected: Expect
    status: int
    location: str
    content_type: str
    body: bytes = b""
    changed: bool | None = None
    problems: list[str] = field(default_factory=list)

    def __str__(self):
        got = f"{self.status}" + (f" → {self.location}" if self.location else "")
        return f"{self.method} {self.url} as {self.role}: expected {self.expected}, got {got}"


def _matches(outcome: Outcome) -> bool:
    expected = outcome.expected
    if outcome.status != expected.status:
        return False
    on_login = urlsplit(outcome.location).path == "/account/login"
    if expected.login != on_login and outcome.status == 302:
        return False
    if expected.status == 401 and not outcome.content_type.startswith("application/problem+json"):
        return False
    return True


class Walk:
    def __init__(self, app, world):
        self.app, self.world = app, world
        self.outcomes: list[Outcome] = []
        self.last_fingerprint: str | None = None
        self.clients = {role: app.test_client() for role in ROLES}
        for role, email in world.emails.items():
            login(self.clients[role], email)
        self.tokens = {role: csrf_token(client, "/account/login") for role, client in self.clients.items()}

    def url(self, endpoint: str, route: Route, query: bool) -> str:
        with self.app.test_request_context():
            args = route.args(self.world)
            if query:
                args.update(route.query(self.world))
            return url_for(endpoint, **args)

    def send(self, endpoint: str, route: Route, method: str, role: str, check_unchanged: bool) -> Outcome:
        expected = (route.get if method == "GET" else route.post)[role]
        url = self.url(endpoint, route, query=method == "GET")
        headers = {}
        if role == "regulator" and url.startswith("/api/v1/"):
            headers["Authorization"] = f"Bearer {self.world.token}"
        # The database as the previous checked request left it, when nothing ran in between.
        before = (self.last_fingerprint or fingerprint()) if check_unchanged else None
        self.last_fingerprint = None
        client = self.clients[role]
        if method == "GET":
            response = client.get(url, headers=headers)
        else:
            with self.app.test_request_context():
                data = {**route.payload(self.world), "csrf_token": self.tokens[role]}
            response = client.post(url, data=data, headers=headers,
                                   content_type="multipart/form-data" if route.multipart else None)
        outcome = Outcome(endpoint, method, role, url, expected, response.status_code,
                          response.headers.get("Location", ""), response.content_type or "",
                          response.get_data())
        response.close()
        if before is not None:
            self.last_fingerprint = fingerprint()
            outcome.changed = self.last_fingerprint != before
        self.outcomes.append(outcome)
        return outcome

    def run(self):
        posts = [(e, r) for e, r in TABLE.items() if r.post]
        # 1. Everything refused, first, while the world is as built.
        for endpoint, route in TABLE.items():
            for method, table in (("GET", route.get), ("POST", route.post)):
                for role, expected in (table or {}).items():
                    if not expected.allowed:
                        self.send(endpoint, route, method, role, check_unchanged=True)
        # 2. Every allowed GET.
        for endpoint, route in TABLE.items():
            for role, expected in (route.get or {}).items():
                if expected.allowed:
                    self.send(endpoint, route, "GET", role, check_unchanged=False)
        # 3. Every allowed POST, logging out last.
        for endpoint, route in sorted(posts, key=lambda pair: pair[0] == "account.logout"):
            for role, expected in route.post.items():
                if expected.allowed:
                    self.send(endpoint, route, "POST", role, check_unchanged=expected.writes)
        return self


@contextmanager
def world_site(migrated, tmp_path_factory, name: str):
    """An application holding the world of every role (jobs kept out of its threads), in
    its context; emptied afterwards."""
    instance = tmp_path_factory.mktemp(name)
    app = create_app({**_test_config(migrated, instance), "JOBS_RUN_IN_WEB": False, "JOBS_DIR": str(instance / "jobs")})
    app.test_client_class = IsolatedClient
    with app.app_context():
        try:
            world = build_world(db.session)
            add_jobs(app, db.session, world)
            yield app, world
        finally:
            db.session.remove()
            _empty_tables()
            db.engine.dispose()


@pytest.fixture(scope="module")
def walk(migrated, tmp_path_factory):
    with world_site(migrated, tmp_path_factory, "matrix") as (app, world):
        yield Walk(app, world).run()


# --- the tests ------------------------------------------------------------------------------

def test_every_route_is_in_the_table(tmp_path):
    app = create_app(_test_config("sqlite://", tmp_path))
    routed: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        routed.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    missing = sorted(set(routed) - set(TABLE))
    assert not missing, f"routes nobody decided who may use: add them to TABLE: {missing}"
    gone = sorted(set(TABLE) - set(routed))
    assert not gone, f"TABLE names endpoints that no longer exist: {gone}"
    for endpoint, methods in routed.items():
        route = TABLE[endpoint]
        covered = {"GET"} if route.get else set()
        covered |= {"POST"} if route.post else set()
        assert methods == covered, f"{endpoint} takes {sorted(methods)}; TABLE covers {sorted(covered)}"
        for table in (route.get, route.post):
            assert table is None or set(table) == set(ROLES), f"{endpoint}: say what every role gets"


def test_each_role_gets_what_the_table_says(walk):
    wrong = [str(o) for o in walk.outcomes if not _matches(o)]
    assert not wrong, "\n".join(wrong)
    assert len(walk.outcomes) >= 400  # every rule × every role, both methods where taken


def test_refused_requests_change_nothing(walk):
    refused = [o for o in walk.outcomes if not o.expected.allowed]
    assert refused and all(o.changed is False for o in refused), \
        "\n".join(str(o) for o in refused if o.changed)
    # The refused writes include firm B's publisher on every one of firm A's rows.
    assert {o.endpoint for o in refused if o.role == "publisher_b" and o.method == "POST"} >= {
        "publisher.edit_item", "publisher.item_action", "publisher.import_preview", "publisher.answer_flag",
        "publisher.complaint"}


def test_allowed_writes_take_effect(walk):
    """The payloads the refused visitors sent were real changes: the allowed visitor's worked."""
    writes = [o for o in walk.outcomes if o.expected.writes]
    assert len(writes) >= 15
    assert not [o for o in writes if not o.changed], "\n".join(str(o) for o in writes if not o.changed)


def test_drafts_are_seen_by_their_own_firm_only(walk):
    texts = [o for o in walk.outcomes if o.method == "GET" and o.status == 200 and
             o.content_type.split(";")[0] in ("text/html", "text/csv", "application/json", "application/atom+xml",
                                              "application/problem+json")]
    leaks = []
    for o in texts:
        body = o.body.decode("utf-8-sig", "replace")
        for owner, markers in DRAFT_MARKERS.items():
            if o.role != owner and any(m in body for m in markers):
                leaks.append(f"{o.url} as {o.role} shows {owner}'s unpublished changes")
    assert not leaks, "\n".join(leaks)
    # And the firm's own publisher does see them (so the markers are where they should be).
    own = [o for o in texts if o.role == "publisher_a" and o.endpoint == "publisher.schedule"]
    assert own and all(m in own[0].body.decode() for m in DRAFT_MARKERS["publisher_a"][:2])


def test_pages_satisfy_the_csp(walk):
    pages = [o for o in walk.outcomes if o.content_type.startswith("text/html")]
    assert len(pages) >= 200
    broken = []
    for o in pages:
        problems = csp_problems(o.body.decode())
        if problems:
            broken.append(f"{o.method} {o.url} as {o.role}: {sorted(set(problems))}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("html,problem", [
    ('<p>x</p><script>alert(1)</script>', "inline <script>"),
    ('<button onclick="go()">', "handler"),
    ('<div style="color:red">', "style="),
    ('<a href=" JavaScript:go()">', "javascript:"),
    ('<style>p{}</style>', "<style> element"),
    ('<img src="https://cdn.example/x.png">', "from elsewhere"),
    ('<form action="//evil.example/">', "from elsewhere"),
    ('<svg><rect style="fill:red"/></svg>', "style="),
])
def test_the_csp_audit_finds_what_the_browser_would_block(html, problem):
    assert any(problem in p for p in csp_problems(html))
    assert csp_problems('<script src="/static/x.js"></script><img src="data:image/png;base64,AA">'
                        '<a href="https://example.org/">x</a><details open><summary>s</summary></details>') == []


def test_the_api_takes_no_writes(walk):
    """The API blueprint is exempt from CSRF because it only reads; a write method anywhere
    under /api/v1 is a 405 problem, whoever asks, and changes nothing."""
    api_rules = [r for r in walk.app.url_map.iter_rules() if r.endpoint.startswith("api.")]
    assert api_rules and all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in api_rules)
    before = fingerprint()
    for role, client in walk.clients.items():
        for method in ("post", "put", "patch", "delete"):
            response = getattr(client, method)(f"/api/v1/fee-items/{walk.world.item_a}",
                                               headers={"Authorization": f"Bearer {walk.world.token}"},
                                               json={"amount": "1"})
            assert response.status_code == 405 and response.is_json, (role, method)
    assert fingerprint() == before
