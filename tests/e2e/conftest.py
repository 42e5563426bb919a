"""End-to-end fixtures: the real app served over HTTP and driven in Debian's Chromium.

The site is the app from `create_app`, with a temporary instance folder, its schema built by
the real migrations, seeded by the generator behind `feereg demo` (300 items, with the demo
publisher, regulator and admin accounts and the flags the scan raises on its planted
irregularities) plus one complaint whose charge the firm does not publish, which raises an
UNDISCLOSED flag. Werkzeug's WSGI server serves it from a thread on a free port of
127.0.0.1; one site per database is built once per session.

Chromium is Debian's (`apt-get install chromium`, which `make` does), launched by Playwright
through its executable path: Playwright's own browser download is never used. Without it
the tests skip, loudly; with CI=true they fail.

Every page a test visits is checked by `Tab.check`: no JavaScript error or Content Security
Policy violation, `<html lang>` set to the page's language, every visible form field named
by a label (or aria-label/aria-labelledby), no horizontal scroll at 1280 px or 390 px, and a
full-page screenshot at both widths under test-artifacts/e2e/<test>/.
"""
from __future__ import annotations

import re
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from feereg import PROJECT_ROOT, create_app
from feereg.extensions import db

from ..conftest import IN_CI, _postgres_available, scratch_postgres

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: (name, width, height): a desktop and a phone (an iPhone 12-15 in CSS pixels).
WIDTHS = (("1280", 1280, 800), ("390", 390, 844))
#: The demo accounts (feereg/demo/generator.py).
DEMO_PASSWORD = "demo-password-1"
REGULATOR = "regulator@demo.feereg"
PUBLISHER = "publisher@demo.feereg"
#: Controls a person fills in; each must have a label of its own, not only a placeholder.
FIELDS = "input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]), select, textarea"
#: Playwright waits this long for a condition that should already hold on a loaded page.
QUICK_MS = 3000

_screens_written: list[Path] = []
_skipped: set[str] = set()


def _skip_loudly(message: str):
    # Not warnings.warn: the suite turns warnings into errors. The reason is in the -ra summary
    # of each skipped test, and once more at the very end of the run (pytest_terminal_summary).
    _skipped.add(message)
    pytest.skip(message)


# --- the browser ---------------------------------------------------------------------------

def _chromium_problem() -> tuple[str | None, str | None]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return None, f"the Python package playwright is not installed ({exc})"
    path = shutil.which("chromium")
    if path is None:
        return None, "Debian's chromium is not installed (apt-get install chromium)"
    return path, None


@pytest.fixture(scope="session")
def browser():
    path, problem = _chromium_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"end-to-end tests need a browser in CI: {problem}")
        _skip_loudly(f"SKIPPING end-to-end browser tests: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- the site ------------------------------------------------------------------------------

@dataclass
class Site:
    backend: str
    url: str
    app: object
    #: The demo publisher's firm, the complaint filed about it and the flag that complaint raised.
    firm_code: str
    complaint_id: int
    flag_id: int

    @contextmanager
    def session(self):
        """The site's database, read from the test (the server has its own sessions)."""
        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()


def _config(database_url: str, instance: Path) -> dict:
    return {
        # Not TESTING: errors get the site's own error page, as in production.
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "e2e-secret",
        "SEARCH_DIR": str(instance / "search"),
        "PDF_CACHE_DIR": str(instance / "pdf-cache"),
        "BULK_DIR": str(instance / "bulk"),
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_FAST": True,
    }


def _seed(site_session) -> tuple[str, int, int]:
    """The demo registry, then a complaint about a fee the demo publisher's firm does not publish."""
    from feereg.demo.generator import generate
    from feereg.models import FeeItem, FeeType, Flag, User
    from feereg.services import complaints
    from feereg.services.registry import today

    generate(site_session, firms=50, items=300, seed=20261123)
    site_session.commit()
    publisher = site_session.scalar(select(User).where(User.email == "publisher@demo.feereg"))
    firm = publisher.firm
    published = set(site_session.scalars(select(FeeItem.fee_type_code).where(FeeItem.firm_id == firm.id)))
    unlisted = next(ft for ft in site_session.scalars(select(FeeType).order_by(FeeType.code))
                    if ft.code not in published and ft.abolished_from is None)
    complaint, flag = complaints.file_complaint(site_session, {
        "firm": firm, "fee_name": unlisted.name_zh, "amount": "380", "currency": "CNY",
        "charged_on": today() - timedelta(days=3),
        "description": "演示投诉：提单放货时被加收此费用，企业公示的收费目录中没有。",
        "contact": "shipper@e2e.example"})
    site_session.commit()
    assert flag is not None and site_session.get(Flag, flag.id).rule == "UNDISCLOSED"
    return firm.credit_code, complaint.id, flag.id


def _quiet_handler():
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # one line per request drowns the test output
            pass

    return QuietHandler


@contextmanager
def _served(database_url: str, instance: Path):
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    app = create_app(_config(database_url, instance))
    with app.app_context():
        upgrade()
        firm_code, complaint_id, flag_id = _seed(db.session)
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_quiet_handler())
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield Site("", f"http://127.0.0.1:{server.server_port}", app, firm_code, complaint_id, flag_id)
    finally:
        server.shutdown()
        thread.join(10)
        with app.app_context():
            db.engine.dispose()


@contextmanager
def _postgres_database():
    problem = _postgres_available()
    if problem and not IN_CI:
        _skip_loudly(f"SKIPPING the PostgreSQL end-to-end journey: PostgreSQL unreachable: {problem}")
    with scratch_postgres("e2e journey") as url:
        yield url


@pytest.fixture(scope="session")
def sites(tmp_path_factory):
    """Sites by database backend, each built on first use and kept for the session."""
    from contextlib import ExitStack

    built: dict[str, Site] = {}
    with ExitStack() as stack:
        def get(backend: str) -> Site:
            if backend not in built:
                instance = tmp_path_factory.mktemp(f"e2e-{backend}")
                if backend == "sqlite":
                    url = f"sqlite:///{instance / 'feereg.sqlite'}"
                else:
                    url = stack.enter_context(_postgres_database())
                site = stack.enter_context(_served(url, instance))
                site.backend = backend
                built[backend] = site
            return built[backend]
        yield get


@pytest.fixture
def site(sites, browser):
    """The SQLite site: the journeys that do not name a database run there."""
    return sites("sqlite")


# --- a browser tab that checks every page it shows -----------------------------------------

class Tab:
    """One person's browser tab: it navigates like a person and checks each page it is asked to."""

    def __init__(self, page, site: Site, shots: Path):
        self.page = page
        self.site = site
        self.shots = shots
        self.problems: list[str] = []
        self.steps = 0
        # Generous: a PDF rendered on a busy 2-core machine took over 8 s; a real hang still fails.
        page.set_default_timeout(30_000)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: JavaScript error: {exc}"))
        page.on("response", self._response)

    def _console(self, message):
        # A CSP violation is reported as a console error ("Refused to apply inline style ...
        # because it violates the following Content Security Policy directive").
        if message.type == "error":
            self.problems.append(f"{self.page.url}: console error: {message.text}")

    def _response(self, response):
        if response.status >= 500:
            self.problems.append(f"{response.url}: HTTP {response.status}")

    def goto(self, path: str):
        response = self.page.goto(self.site.url + path)
        assert response is not None and response.ok, f"{path}: HTTP {response.status if response else '?'}"
        return response

    @property
    def path(self) -> str:
        return self.page.url.removeprefix(self.site.url)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)

    def check(self, step: str, lang: str = "zh") -> None:
        """Check the page as it is now, and save its screenshots (see the module's docstring)."""
        page = self.page
        page.wait_for_load_state("load")
        self.assert_clean()
        assert page.evaluate("document.documentElement.lang") == ("zh-CN" if lang == "zh" else "en"), \
            f"{self.path}: <html lang> is not {lang}"
        self._check_fields_named()
        self.steps += 1
        size = page.viewport_size
        try:
            for name, width, height in WIDTHS:
                page.set_viewport_size({"width": width, "height": height})
                overflow = page.evaluate("""() => {
                    const doc = document.scrollingElement, width = window.innerWidth;
                    if (doc.scrollWidth <= width) return null;
                    // Name the culprits for the failure message: wide boxes not inside a scroller.
                    const scrolls = e => ['auto', 'scroll', 'hidden'].includes(getComputedStyle(e).overflowX);
                    const contained = e => { for (let p = e.parentElement; p; p = p.parentElement)
                                               if (scrolls(p)) return true; return false; };
                    const wide = [...document.querySelectorAll('main *, header *, footer *')]
                      .filter(e => e.getBoundingClientRect().right > width + 1 && !contained(e))
                      .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                                         + ' right=' + Math.round(e.getBoundingClientRect().right));
                    return {scrollWidth: doc.scrollWidth, width, wide};
                }""")
                assert overflow is None, f"{self.path} scrolls sideways at {width} px: {overflow}"
                self.shots.mkdir(parents=True, exist_ok=True)
                shot = self.shots / f"{self.steps:02d}-{step}-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                _screens_written.append(shot)
        finally:
            page.set_viewport_size(size)
        self.assert_clean()

    def _check_fields_named(self) -> None:
        from playwright.sync_api import expect

        page = self.page
        # Which fields a person can see, and whether each has a label of its own.
        found = page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map((e, i) => {
            const visible = !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length)
                            && getComputedStyle(e).visibility !== 'hidden';
            const labelled = [...(e.labels || [])].some(l => l.textContent.trim())
                             || (e.getAttribute('aria-label') || '').trim() !== ''
                             || (e.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
                                  .some(id => (document.getElementById(id)?.textContent || '').trim());
            return {i, visible, labelled, what: e.outerHTML.slice(0, 120)};
        })""", FIELDS)
        unlabelled = [f["what"] for f in found if f["visible"] and not f["labelled"]]
        assert not unlabelled, f"{self.path}: form fields without a label: {unlabelled}"
        fields = page.locator(FIELDS)
        for f in found:
            if f["visible"]:
                # Playwright's own accessible-name computation, as a screen reader would get it.
                expect(fields.nth(f["i"])).to_have_accessible_name(re.compile(r"\S"), timeout=QUICK_MS)

    def focused(self) -> dict:
        """What has the keyboard focus, and how its focus ring shows: the outline's width and its
        contrast with the background around it (WCAG 1.4.11 asks 3:1 of a focus indicator)."""
        return self.page.evaluate("""() => {
            const e = document.activeElement, style = getComputedStyle(e);
            const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => [r, g, b]
                .map(c => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)
                                                 .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
            let around = [255, 255, 255];  // the outline lies outside the element: its ancestors' background
            for (let p = e.parentElement; p; p = p.parentElement) {
                const bg = rgba(getComputedStyle(p).backgroundColor);
                if (bg.length === 3 || bg[3] > 0) { around = bg; break; }
            }
            const [a, b] = [lum(rgba(style.outlineColor)), lum(around)];
            return {tag: e.tagName.toLowerCase(), id: e.id, text: (e.textContent || '').trim().slice(0, 60),
                    href: e.getAttribute('href'), focusVisible: e.matches(':focus-visible'),
                    outline: style.outlineStyle === 'none' ? 0 : parseFloat(style.outlineWidth),
                    contrast: Math.round((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) * 10) / 10};
        }""")

    def tab_to(self, matches, limit: int = 60, key: str = "Tab") -> dict:
        """Press Tab until the focused element satisfies `matches`; each stop must show its focus
        with a ring at least 2 px wide and 3:1 against its surroundings."""
        for _ in range(limit):
            self.page.keyboard.press(key)
            now = self.focused()
            if now["tag"] != "body":
                assert now["focusVisible"] and now["outline"] >= 2 and now["contrast"] >= 3, \
                    f"{self.path}: the focus on {now} is not drawn clearly"
            if matches(now):
                return now
        raise AssertionError(f"{self.path}: no focusable element matched within {limit} presses of {key}")


# --- people ----------------------------------------------------------------------------------

def login_with_the_keyboard(tab, email: str) -> None:
    """Skip link, then the form's own fields: Tab, type, Enter, never the mouse."""
    from playwright.sync_api import expect

    page = tab.page
    tab.goto("/account/login")
    skip = tab.tab_to(lambda f: True, limit=1)
    assert (skip["tag"], skip["href"], skip["text"]) == ("a", "#main", "跳至正文")
    expect(page.get_by_role("link", name="跳至正文")).to_be_in_viewport()
    page.keyboard.press("Enter")
    assert tab.tab_to(lambda f: True, limit=1)["id"] == "email"
    page.keyboard.type(email)
    assert tab.tab_to(lambda f: True, limit=1)["id"] == "password"
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/(publisher|regulator|admin)/(#main)?$"))  # a fragment survives the redirect


def login(tab, email: str) -> None:
    tab.goto("/account/login")
    tab.page.get_by_label("电子邮箱").fill(email)
    tab.page.get_by_label("密码").fill(DEMO_PASSWORD)
    tab.page.get_by_role("button", name="登录").click()
    tab.page.wait_for_url(re.compile(r"/(publisher|regulator|admin)/"))


def _artifact_dir(node_name: str) -> Path:
    path = ARTIFACTS / re.sub(r"[^\w.-]+", "-", node_name).strip("-")
    shutil.rmtree(path, ignore_errors=True)  # this run's screenshots only; made on the first one
    return path


@pytest.fixture
def open_tab(browser, request):
    """Open a tab for one person on a site: `open_tab(site)`, `open_tab(site, "regulator")`."""
    contexts = []
    shots = _artifact_dir(request.node.name)

    def opener(site: Site, person: str = "") -> Tab:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                      accept_downloads=True)
        contexts.append(context)
        return Tab(context.new_page(), site, shots / person if person else shots)

    yield opener
    for context in contexts:
        context.close()


def pytest_terminal_summary(terminalreporter):
    for message in sorted(_skipped):
        terminalreporter.write_sep("!", message, red=True, bold=True)
    if _screens_written:
        terminalreporter.write_line(f"end-to-end screenshots ({len(_screens_written)}): {ARTIFACTS}")
