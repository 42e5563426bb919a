"""HTTP caching of the public pages (feereg/http_cache.py): validators known before
rendering, 304 without running the view, a new validator after every public change, and
nothing personal ever cacheable. Each test runs with the registry's state read from the
database (one server, no Redis) and from Redis (several servers), on SQLite and PostgreSQL."""
from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime

import pytest
import redis

from feereg import create_app, http_cache
from feereg.cache import shared_cache
from feereg.extensions import db
from feereg.services import firms, registry

from .conftest import IsolatedClient, _empty_tables, _test_config, login, post_form
from .factories import catalog_file_with, make_firm, make_user, publish
from .redis_support import delete_keys, redis_url_or_skip

PAGES = ["/", "/firms", "/catalog", "/search?q=%E6%96%87%E4%BB%B6%E8%B4%B9", "/compare", "/compare/DOC",
         "/quote", "/quote/results?port=YANTIAN&direction=export&count_40=1&bills=1", "/feeds/changes.atom",
         "/api"]


def _app(config: dict):
    app = create_app(config)
    app.test_client_class = IsolatedClient
    return app


@contextlib.contextmanager
def serving(migrated: str, tmp_path, redis_url: str | None = None, **config):
    """The app, its registry state kept in the database or, given redis_url, in Redis."""
    config = {**_test_config(migrated, tmp_path), **config}
    if redis_url:
        config.update(REDIS_URL=redis_url, REDIS_PREFIX=f"feereg-test-{uuid.uuid4().hex[:12]}")
    app = _app(config)
    try:
        with app.app_context():
            yield app
            db.session.remove()
            _empty_tables()
            db.engine.dispose()
    finally:
        if redis_url:
            delete_keys(redis_url, config["REDIS_PREFIX"])


@pytest.fixture(params=["database", "redis"])
def web(request, migrated, tmp_path):
    with serving(migrated, tmp_path, redis_url_or_skip() if request.param == "redis" else None) as app:
        yield app


@pytest.fixture
def site(migrated, tmp_path):
    """For what does not depend on where the state is kept: the state in the database."""
    with serving(migrated, tmp_path) as app:
        yield app


@pytest.fixture
def redis_web(migrated, tmp_path):
    with serving(migrated, tmp_path, redis_url_or_skip()) as app:
        yield app


def make_firm_item():
    firm = make_firm(ports=("YANTIAN",))
    user = make_user("publisher", firm)
    item = publish(firm, user, fee_type="DOC", amount="450")
    db.session.commit()
    return firm, user, item


@pytest.fixture
def firm_item(web):
    return make_firm_item()


def count_calls(app, endpoint: str) -> list:
    """Calls of a view from now on: a 304 answered before rendering does not call it."""
    calls = []
    view = app.view_functions[endpoint]

    @functools.wraps(view)
    def counted(*args, **kwargs):
        calls.append(endpoint)
        return view(*args, **kwargs)

    app.view_functions[endpoint] = counted
    return calls


def conditional(client, url: str, etag: str | None = None, since: str | None = None):
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if since:
        headers["If-Modified-Since"] = since
    return client.get(url, headers=headers)


def test_public_pages_revalidate_with_304_before_rendering(web, firm_item):
    firm, _, item = firm_item
    client = web.test_client()
    for url in [*PAGES, f"/firms/{firm.credit_code}", f"/items/{item.id}", f"/firms/{firm.credit_code}/history",
                f"/firms/{firm.credit_code}/schedule.csv", "/compare/DOC/download.csv"]:
        first = client.get(url)
        assert first.status_code == 200, url
        etag = first.headers["ETag"]
        assert etag.startswith('W/"'), url
        control = first.headers["Cache-Control"]
        assert control.startswith("public, max-age="), (url, control)
        assert "Cookie" in first.headers["Vary"]
        again = conditional(client, url, etag)
        assert again.status_code == 304 and again.data == b"", url
        assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == control


def test_a_304_does_not_run_the_view(web, firm_item):
    firm, _, _ = firm_item
    calls = count_calls(web, "public.firm")
    client = web.test_client()
    etag = client.get(f"/firms/{firm.credit_code}").headers["ETag"]
    for _ in range(3):
        assert conditional(client, f"/firms/{firm.credit_code}", etag).status_code == 304
    assert calls == ["public.firm"]
    # A client holding another validator gets the page.
    assert conditional(client, f"/firms/{firm.credit_code}", 'W/"something-else"').status_code == 200
    assert len(calls) == 2


def test_publish_withdraw_and_firm_change_each_give_a_new_etag(web, firm_item):
    firm, user, item = firm_item
    client = web.test_client()
    urls = ["/", f"/firms/{firm.credit_code}", "/compare/DOC", "/search?q=DOC"]
    seen = {url: [client.get(url).headers["ETag"]] for url in urls}

    def step():
        for url in urls:
            response = conditional(client, url, seen[url][-1])
            assert response.status_code == 200, url
            assert response.headers["ETag"] not in seen[url], url
            seen[url].append(response.headers["ETag"])
            assert conditional(client, url, seen[url][-1]).status_code == 304, url

    publish(firm, user, fee_type="EIR", name_zh="设备交接单费", amount="50")
    db.session.commit()
    step()
    registry.withdraw_item(db.session, item, user, registry.today(), reason="停止收取")
    db.session.commit()
    step()
    firms.set_status(db.session, firm, "suspended", "整改", make_user("admin"))
    db.session.commit()
    step()
    # The pages say what changed: the new page is the one the validator stands for.
    assert "整改" in client.get(f"/firms/{firm.credit_code}").get_data(as_text=True)


def test_a_change_made_by_another_worker_shows_at_once(web, firm_item, tmp_path):
    """Two app instances stand for two workers (or servers): a publish committed through one
    changes the validators the other gives, without anything being sent between them."""
    firm, user, _ = firm_item
    other = _app({**web.config, "SEARCH_DIR": str(tmp_path / "other-search")})
    try:
        client = other.test_client()
        etag = client.get(f"/firms/{firm.credit_code}").headers["ETag"]
        assert conditional(client, f"/firms/{firm.credit_code}", etag).status_code == 304
        publish(firm, user, fee_type="EIR", name_zh="设备交接单费", amount="50")
        db.session.commit()  # through this app (this "worker")
        fresh = conditional(client, f"/firms/{firm.credit_code}", etag)
        assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
        assert "设备交接单费" in fresh.get_data(as_text=True)
    finally:
        with other.app_context():
            db.engine.dispose()


def test_each_language_has_its_own_etag(web, firm_item):
    firm, _, _ = firm_item
    url = f"/firms/{firm.credit_code}"
    chinese = web.test_client()
    english = web.test_client()
    english.get("/?lang=en")  # the choice is kept in the session: same address, other language
    zh, en = chinese.get(url), english.get(url)
    assert zh.headers["ETag"] != en.headers["ETag"]
    assert "Schedule" in en.get_data(as_text=True) or "schedule" in en.get_data(as_text=True)
    assert conditional(english, url, zh.headers["ETag"]).status_code == 200
    assert conditional(english, url, en.headers["ETag"]).status_code == 304
    # The address that sets the language sets a cookie: browsers may keep it, shared caches not.
    assert english.get(url + "?lang=en").headers["Cache-Control"].startswith("private")


def test_signed_in_pages_are_never_public_nor_304(site):
    firm, user, _ = make_firm_item()
    anonymous = site.test_client()
    etag = anonymous.get(f"/firms/{firm.credit_code}").headers["ETag"]
    client = site.test_client()
    login(client, user.email)
    for url in ["/", f"/firms/{firm.credit_code}", "/compare/DOC", "/publisher/"]:
        response = conditional(client, url, etag)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "private, no-store", url
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers
        assert user.email in response.get_data(as_text=True)  # why: the page names its reader


def test_forms_with_csrf_tokens_and_flashed_messages_are_not_cached(site):
    client = site.test_client()
    for url in ["/account/login", "/complaints/new", "/invoice-check"]:
        response = client.get(url)
        assert 'name="csrf_token"' in response.get_data(as_text=True), url
        assert response.headers["Cache-Control"] == "private, no-store", url
        assert "ETag" not in response.headers
    etag = client.get("/").headers["ETag"]
    with client.session_transaction() as sess:
        sess["_flashes"] = [("success", "投诉已提交")]
    shown = conditional(client, "/", etag)
    assert shown.status_code == 200 and "投诉已提交" in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "private, no-store" and "ETag" not in shown.headers


def test_post_answers_are_never_cached(site):
    client = site.test_client()
    refused = post_form(client, "/account/login", {"email": "nobody@example.com", "password": "wrong-password-1"})
    failed_check = post_form(client, "/invoice-check", {"lines": ""})
    for response in (refused, failed_check):
        assert response.headers["Cache-Control"] in ("no-store", "private, no-store")
        assert "ETag" not in response.headers and "public" not in response.headers["Cache-Control"]


def test_if_modified_since_is_honoured(web, firm_item):
    firm, user, _ = firm_item
    url = f"/firms/{firm.credit_code}"
    client = web.test_client()
    # A date is sent once it is a second old: the state and the release were just seen.
    assert "Last-Modified" not in client.get(url).headers
    time.sleep(http_cache.LAST_MODIFIED_SETTLED + 0.05)
    first = client.get(url)
    modified = first.headers["Last-Modified"]
    assert conditional(client, url, since=modified).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(modified) - timedelta(days=1), usegmt=True)
    assert conditional(client, url, since=earlier).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110 13.2.2).
    assert conditional(client, url, etag='W/"other"', since=modified).status_code == 200

    publish(firm, user, fee_type="EIR", name_zh="设备交接单费", amount="50")
    db.session.commit()
    # The old date was sent a second after anything it covers, so this change is dated
    # later (or, within its own second, not dated at all): the client gets the new page.
    after = conditional(client, url, since=modified)
    assert after.status_code == 200 and "设备交接单费" in after.get_data(as_text=True)
    if "Last-Modified" in after.headers:
        assert parsedate_to_datetime(after.headers["Last-Modified"]) > parsedate_to_datetime(modified)


def test_pages_that_are_not_public_pages_get_no_validator(site):
    client = site.test_client()
    missing = client.get("/firms/000000000000000000")
    assert missing.status_code == 404 and "ETag" not in missing.headers
    assert "public" not in missing.headers.get("Cache-Control", "")
    health = client.get("/healthz")
    assert health.headers["Cache-Control"] == "no-store" and "ETag" not in health.headers


def test_api_keeps_its_own_validators(site):
    make_firm_item()
    client = site.test_client()
    answer = client.get("/api/v1/fee-types")
    assert answer.headers["Cache-Control"] == "public, max-age=60"
    assert not answer.headers["ETag"].startswith("W/")  # the API's strong ETag from its bytes
    assert conditional(client, "/api/v1/fee-types", answer.headers["ETag"]).status_code == 304


# --- Redis only -------------------------------------------------------------------------

def test_state_is_renewed_after_redis_comes_back(redis_web, caplog):
    """A publish committed while Redis was unreachable could not renew the state; when Redis
    answers again the process that saw it fail renews it, so no old validator stays valid."""
    firm, user, _ = make_firm_item()
    url = f"/firms/{firm.credit_code}"
    client = redis_web.test_client()
    etag = client.get(url).headers["ETag"]
    cache = shared_cache(redis_web)
    working = cache.client
    cache.client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens there
    try:
        with caplog.at_level(logging.WARNING, logger="feereg.cache"):
            down = conditional(client, url, etag)
            publish(firm, user, fee_type="EIR", name_zh="设备交接单费", amount="50")
            db.session.commit()
            again = conditional(client, url, etag)
        # Served all the same, without a validator, and cacheable for max-age only.
        assert down.status_code == 200 and "ETag" not in down.headers
        assert down.headers["Cache-Control"].startswith("public, max-age=")
        assert again.status_code == 200 and "设备交接单费" in again.get_data(as_text=True)
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1  # once per outage, not once per request
    finally:
        cache.client = working
    cache._down_until = 0.0001  # the retry pause is over; the next call reaches Redis
    back = conditional(client, url, etag)
    assert back.status_code == 200 and back.headers["ETag"] != etag
    assert conditional(client, url, back.headers["ETag"]).status_code == 304


def test_cache_clear_renews_the_state(redis_web):
    firm, _, _ = make_firm_item()
    client = redis_web.test_client()
    etag = client.get(f"/firms/{firm.credit_code}").headers["ETag"]
    result = redis_web.test_cli_runner().invoke(args=["cache", "clear"])
    assert result.exit_code == 0, result.output
    assert conditional(client, f"/firms/{firm.credit_code}", etag).status_code == 200


def test_writes_to_private_tables_leave_the_state_alone(redis_web):
    """Sign-ins and new accounts write rows no public page shows: pages stay 304."""
    firm, user, _ = make_firm_item()
    client = redis_web.test_client()
    etag = client.get("/firms").headers["ETag"]
    login(redis_web.test_client(), user.email)
    make_user("regulator")
    db.session.commit()  # a user account: private
    assert conditional(client, "/firms", etag).status_code == 304


def test_pages_skip_the_snapshot_refresh_only_while_no_commit_renewed_the_state(redis_web, tmp_path, monkeypatch):
    """A comparison page that read the state token from Redis spares the snapshot's
    refresh while the token is unchanged; a publish committed through another app (another
    worker: its own engine and snapshot) renews the token, and the next page shows it."""
    from sqlalchemy import text

    from feereg.services import snapshot

    firm, user, _ = make_firm_item()
    monkeypatch.setattr(snapshot, "STATE_TRUSTED", 600.0)  # a slow machine must not run it out
    other = _app({**redis_web.config, "SEARCH_DIR": str(tmp_path / "other-search")})
    try:
        client = other.test_client()
        assert "450" in client.get("/compare/DOC").get_data(as_text=True)
        with other.app_context():
            cache = snapshot.cache_of(db.session)
        skipped = cache.skipped
        assert "450" in client.get("/compare/DOC").get_data(as_text=True)
        assert cache.skipped == skipped + 1  # nothing committed: no refresh read

        second = make_firm(ports=("YANTIAN",))
        publish(second, make_user("publisher", second), fee_type="DOC", amount="777")
        db.session.commit()  # through the first app: the token is renewed
        assert "777" in client.get("/compare/DOC").get_data(as_text=True)
        assert cache.skipped == skipped + 1

        # Written behind the application's back: no token renewal, so the skip is bounded
        # in time (STATE_TRUSTED; here run out at once) and the next page sees it.
        db.session.execute(text("UPDATE firm SET name_zh = '改名后的收费公司' WHERE id = :id"), {"id": second.id})
        db.session.execute(text("INSERT INTO audit_event (at, action, subject_type, firm_id, detail, ip) "
                                "VALUES (CURRENT_TIMESTAMP, 'firm.update', 'firm', :id, '{}', '')"),
                           {"id": second.id})
        db.session.commit()
        monkeypatch.setattr(snapshot, "STATE_TRUSTED", 0.0)
        assert "改名后的收费公司" in client.get("/compare/DOC").get_data(as_text=True)
    finally:
        with other.app_context():
            db.engine.dispose()


def test_search_pages_reuse_the_catalog_names_only_while_no_commit_renewed_the_state(redis_web, tmp_path,
                                                                                    monkeypatch):
    """The search page's fee type names are read again after a catalog load commits (the
    token is renewed), and not on every page while nothing was committed."""
    from sqlalchemy import event

    from feereg.services import catalog, snapshot

    monkeypatch.setattr(snapshot, "STATE_TRUSTED", 600.0)  # a slow machine must not run it out
    make_firm_item()
    client = redis_web.test_client()
    url = "/search?q=%E6%96%87%E4%BB%B6%E8%B4%B9&lang=en"  # 文件费
    assert "Documentation fee" in client.get(url).get_data(as_text=True)
    reads = []

    def count_catalog_reads(conn, cursor, statement, *args):
        if statement.splitlines()[0].strip() == "SELECT fee_type.code, fee_type.name_zh, fee_type.name_en":
            reads.append(statement)  # fee_type_names' read

    event.listen(db.engine, "before_cursor_execute", count_catalog_reads)
    path = catalog_file_with(tmp_path / "catalog.csv", "DOC", name_en="Documentation fee, renamed")
    try:
        client.get(url)
        assert reads == []  # nothing committed since the first page: the names it read
        assert catalog.load_catalog(db.session, path) == (0, 1)
        db.session.commit()
        assert "Documentation fee, renamed" in client.get(url).get_data(as_text=True)
        assert len(reads) == 1
    finally:  # the catalog is reference data, kept between tests
        event.remove(db.engine, "before_cursor_execute", count_catalog_reads)
        assert catalog.load_catalog(db.session) == (0, 1)
        db.session.commit()
