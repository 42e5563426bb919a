"""The production server for real: `feereg serve` starts gunicorn (feereg/gunicorn_conf.py)
with three workers on a free loopback port, against a PostgreSQL database of its own and
Redis, configured through the environment only. Which worker answered is read from the
access log (pid=), not from anything the application adds for tests.

Shown: requests are spread over several workers, which give the same ETag for the same
page; a publish made through one worker is visible at once through the others, in search
and in a comparison, and no worker answers 304 to the old validator; a rate limit holds
across workers; the server stops cleanly on SIGTERM.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import pytest
import redis

from feereg import create_app
from feereg.extensions import db
from feereg.services import registry

from .conftest import scratch_postgres
from .factories import PASSWORD, make_firm, make_user, publish
from .redis_support import delete_keys, redis_url_or_skip

pytestmark = pytest.mark.slow

FEEREG = Path(sys.executable).with_name("feereg")
API_LIMIT = 12
LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) .* pid=<(?P<pid>\d+)>')
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_database():
    with scratch_postgres("gunicorn test") as url:
        yield url


@pytest.fixture(scope="module")
def site(postgres_database, tmp_path_factory):
    """Seeded database, then `feereg serve`; yields what the tests need, stops it after."""
    redis_url = redis_url_or_skip()
    tmp = tmp_path_factory.mktemp("gunicorn")
    prefix = f"feereg-test-{uuid.uuid4().hex[:12]}"
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp), "LANG": "C.UTF-8",
        "FEEREG_ENV": "production", "FEEREG_SERVERS": "1",
        "FEEREG_SECRET_KEY": uuid.uuid4().hex * 2, "FEEREG_DATABASE_URL": postgres_database,
        "FEEREG_REDIS_URL": redis_url, "FEEREG_REDIS_PREFIX": prefix,
        "FEEREG_SEARCH_DIR": str(tmp / "search"), "FEEREG_PDF_CACHE_DIR": str(tmp / "pdf"),
        "FEEREG_BULK_DIR": str(tmp / "bulk"), "FEEREG_JOBS_DIR": str(tmp / "jobs"),
        "FEEREG_API_RATE_LIMIT": f"{API_LIMIT} per minute",
        "FEEREG_WORKERS": "3", "FEEREG_ACCESS_LOG": str(tmp / "access.log"),
        "FEEREG_ERROR_LOG": str(tmp / "error.log"),
    }
    seeded = _seed({key: value for key, value in env.items()})
    port = free_port()
    # What `feereg serve` says before gunicorn takes over (a refused setting) goes to this file.
    console = open(tmp / "console.log", "w")
    server = subprocess.Popen([str(FEEREG), "serve", "--port", str(port)], env=env, cwd=tmp,
                              stdout=console, stderr=subprocess.STDOUT, start_new_session=True)
    console.close()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server, tmp / "error.log")
        yield {"base": base, "server": server, "tmp": tmp, "redis": redis_url, "prefix": prefix, **seeded}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)  # our own process group only
                server.wait()
        delete_keys(redis_url, prefix)


def _seed(env: dict) -> dict:
    """Through the application, configured as the server will be."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from flask_migrate import upgrade

        app = create_app({"RATELIMIT_ENABLED": False})
        with app.app_context():
            upgrade()
            listed = make_firm(ports=("YANTIAN",), name_zh="老牌船务代理有限公司")
            newcomer = make_firm(ports=("YANTIAN",), name_zh="新来货运代理有限公司")
            owner = make_user("publisher", listed)
            publish(listed, owner, fee_type="DOC", amount="450")
            publisher = make_user("publisher", newcomer)
            db.session.commit()
            from feereg.search import get_backend

            get_backend().rebuild()
            seeded = {"newcomer": newcomer.name_zh, "publisher": publisher.email}
            db.session.remove()
            db.engine.dispose()
        return seeded
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_until_up(base: str, server: subprocess.Popen, error_log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{_tail(error_log.with_name('console.log'))}"
                        f"\n{_tail(error_log)}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(f"gunicorn did not answer within 120 s:\n{_tail(error_log)}")


def _tail(path: Path) -> str:
    return path.read_text()[-3000:] if path.exists() else "(no log)"


class Browser:
    """Cookies and CSRF tokens, as a browser would keep them; no redirects followed."""

    def __init__(self, base: str):
        self.base = base
        # Browsers send Secure cookies to http://127.0.0.1 (a secure context); so does this one.
        jar = CookieJar(DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())

    def get(self, path: str, headers: dict | None = None):
        return self._open(urllib.request.Request(self.base + path, headers=headers or {}))

    def post_form(self, path: str, fields: list[tuple[str, str]]):
        token = CSRF.search(self.get(path)[2]).group(1)
        body = urllib.parse.urlencode([("csrf_token", token), *fields]).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def _open(self, request):
        try:
            with self.opener.open(request, timeout=60) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch_all(base: str, path: str, times: int, headers: dict | None = None) -> list:
    """The same request several times at once, each on its own connection, as many browsers would."""
    def one(_):
        return Browser(base).get(path, headers)
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(one, range(times)))


def served_by(site, path: str, method: str = "GET", at_least: int = 1) -> list[tuple[int, int]]:
    """(status, worker pid) of each request for this path in the access log, in order. A
    worker writes its line just after answering: wait a moment for the ones expected."""
    deadline = time.monotonic() + 10
    while True:
        found = []
        for line in (site["tmp"] / "access.log").read_text().splitlines():
            match = LOG_LINE.search(line)
            if match and match["method"] == method and match["path"] == path:
                found.append((int(match["status"]), int(match["pid"])))
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_workers_share_one_registry_and_one_set_of_limits(site):
    base = site["base"]
    status, headers, body = Browser(base).get("/healthz")
    assert status == 200 and '"status":"ok"' in body and '"configured":true' in body

    # Spread over the workers, and every one of them gives the page the same validator.
    before = fetch_all(base, "/compare/DOC", 12)
    assert {answer[0] for answer in before} == {200}
    assert not any(site["newcomer"] in answer[2] for answer in before)
    etags = {answer[1]["ETag"] for answer in before}
    assert len(etags) == 1, etags
    old_etag = etags.pop()
    workers = {pid for _, pid in served_by(site, "/compare/DOC", at_least=12)}
    assert len(workers) >= 2, f"every request went to one worker: {workers}"
    repeat = fetch_all(base, "/compare/DOC", 6, {"If-None-Match": old_etag})
    assert [answer[0] for answer in repeat] == [304] * 6

    # A publish, through whichever worker takes it.
    browser = Browser(base)
    status, headers, _ = browser.post_form("/account/login", [("email", site["publisher"]), ("password", PASSWORD)])
    assert status == 302, "login refused"
    fields = [("fee_type", "DOC"), ("name_zh", "斑马文件费"), ("name_en", "Zebra documentation fee"),
              ("unit", "per_bl"), ("container_size", ""), ("cargo_scope", ""), ("trade", ""), ("direction", ""),
              ("amount", "380"), ("currency", "CNY"), ("pricing_basis", "market"),
              ("service_content", "签发提单"), ("legal_basis", ""), ("ports", "YANTIAN"), ("tax_included", "y"),
              ("tax_rate", ""), ("tiers", ""), ("fee_code", ""), ("effective_from", registry.today().isoformat()),
              ("reason", ""), ("publish", "y")]
    status, headers, body = browser.post_form("/publisher/items/new", fields)
    assert status == 302, body[:2000]
    [(_, publishing_worker)] = served_by(site, "/publisher/items/new", "POST")[-1:]

    # At once, from every worker: the comparison and search show it, and no 304 for the old page.
    after = fetch_all(base, "/compare/DOC", 12, {"If-None-Match": old_etag})
    assert {answer[0] for answer in after} == {200}
    assert all(site["newcomer"] in answer[2] for answer in after)
    found = fetch_all(base, "/search?q=zebra", 9)
    assert all(answer[0] == 200 and "斑马文件费" in answer[2] for answer in found), [a[0] for a in found]
    others = {pid for _, pid in served_by(site, "/compare/DOC", at_least=30)[-12:]
              + served_by(site, "/search?q=zebra", at_least=9)}
    assert others - {publishing_worker}, "no other worker answered after the publish"

    # The API's limit counts all workers together: the next request is refused wherever it lands.
    allowed = fetch_all(base, "/api/v1/", API_LIMIT)
    assert [answer[0] for answer in allowed] == [200] * API_LIMIT
    assert len({pid for _, pid in served_by(site, "/api/v1/", at_least=API_LIMIT)}) >= 2
    assert Browser(base).get("/api/v1/")[0] == 429
    keys = list(redis.Redis.from_url(site["redis"]).scan_iter(f"LIMITS:LIMITER/{site['prefix']}/*"))
    assert keys, "the limit was not counted in Redis"


def test_stops_cleanly_on_sigterm(site):
    server = site["server"]
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    log = (site["tmp"] / "error.log").read_text()
    assert "Shutting down: Master" in log and "Worker exiting" in log
    assert "Traceback" not in log, _tail(site["tmp"] / "error.log")
    # Within the graceful timeout (30 s): workers finish, nobody is killed.
    assert time.monotonic() - started < 30
    assert "SIGKILL" not in log and "WORKER TIMEOUT" not in log


def test_production_settings_missing_stop_gunicorn_before_any_worker(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "FEEREG_ENV": "production",
           "FEEREG_BIND": f"127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:feereg.gunicorn_conf"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "FEEREG_SECRET_KEY is not set" in done.stderr and "FEEREG_DATABASE_URL is not set" in done.stderr
    assert "Booting worker" not in done.stderr


def test_threaded_workers_are_refused_before_any_worker(tmp_path):
    # gthread workers crashed under load (README); the server says so rather than start them.
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "FEEREG_THREADS": "4",
           "FEEREG_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}", "FEEREG_BIND": f"127.0.0.1:{free_port()}"}
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:feereg.gunicorn_conf"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "4 threads per worker (FEEREG_THREADS, --threads): not supported" in done.stderr
    assert "Booting worker" not in done.stderr
    # gunicorn's own option turns sync workers into gthread ones just the same.
    del env["FEEREG_THREADS"]
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "python:feereg.gunicorn_conf", "--threads", "2"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "2 threads per worker (FEEREG_THREADS, --threads): not supported" in done.stderr
