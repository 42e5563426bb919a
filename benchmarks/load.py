"""Load benchmark: the production server under shippers' reads and a few publishers' writes.

    .venv/bin/python benchmarks/load.py --database-url postgresql://postgres@127.0.0.1:5432/feereg_bench \\
        [--workers 2] [--clients 50] [--duration 60] [--max-requests 200000] [--think-ms 0]
    .venv/bin/python benchmarks/load.py --url http://127.0.0.1:5000/ --database-url ...   (a running server)

It starts gunicorn itself (`feereg serve`, the production command, FEEREG_ENV=production,
feereg/gunicorn_conf.py's settings: sync workers, recycled after FEEREG_MAX_REQUESTS) on
127.0.0.1 and a free port, against the given registry (FEEREG_DATABASE_URL by default)
with its search index (FEEREG_SEARCH_DIR / FEEREG_SEARCH_BACKEND as set), and with
FEEREG_REDIS_URL set so the rate limits are counted in Redis across the workers as in
production (under a prefix of this run's own). Every
FEEREG_*_RATE_LIMIT is raised to 1000000 per minute: all clients come from 127.0.0.1,
one address, and would otherwise measure the limiter's refusals (the limits are still
counted, in Redis, on every request). It waits for /healthz, then warms every worker
(each builds its comparison snapshot and loads its search columns in a thread as it
starts) until two rounds of requests in a row are all fast, then asks every planned quote
and comparison twice per worker, as a server up for a while has seen them (--cold: not;
the first quote of each shipment in each worker then computes its figures afresh).

Then C closed-loop clients (asyncio, raw HTTP/1.1 over keep-alive connections, which
gunicorn's sync workers close after each response) run for T seconds or until the
request budget is spent, each picking the next request by the weights printed: Chinese
and English searches from benchmarks/search_bench.py's fixed query set, comparisons of
common fee types (search_bench's set), fee-type pages, quotes, firm pages, and
publishes. Publishes go through a few publisher sessions (created with `feereg
create-user`, each bound to a firm of its own, logged in once): open one of the firm's
items, change its amount, publish with the form's CSRF token (a 302 is success). A
client that draws a publish waits for a free session; the wait is not timed. With
--think-ms each client pauses between requests (exponentially, that mean), as people
reading pages do; without it the clients ask back to back, which measures how many
requests the server can take rather than how 50 readers fare.

Printed: per kind and overall, requests, requests/s, p50/p95/p99 and errors (non-2xx/3xx,
timeouts, connection errors) with a sample of error bodies, and the client's own CPU
(to show the client was not the bottleneck). Exit status 1 when there were errors.
Only loopback targets are accepted; the run is bounded in time and count and stops the
server it started.
"""
from __future__ import annotations

import argparse
import asyncio
import html.parser
import ipaddress
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: Kind → weight (share of the requests drawn). Publishes are a small share by design.
MIX = {"search_zh": 24, "search_en": 14, "compare": 16, "fee_type": 10, "quote": 10, "firm": 24, "publish": 2}
RAISED_LIMIT = "1000000 per minute"
PUBLISHER_PASSWORD = "Quayside-tally-7481-load"
REQUEST_TIMEOUT = 30.0
#: A warm-up round is fast when its requests took at most this long each, one after
#: another on each worker (a cold worker takes seconds to load its columns first).
WARM_FAST_S = 1.0
#: After the n-th warm-up round with failures, n times this many seconds without requests.
WARM_BACKOFF_S = 45.0
ERROR_SAMPLES = 5


# --- target and server --------------------------------------------------------------------

def loopback_only(url: str) -> tuple[str, int]:
    """The host and port of `url`, refusing any address outside the loopback range."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise SystemExit(f"load: {url!r}: give an http:// URL on this machine")
    port = parts.port or 80
    addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    outside = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if outside or not addresses:
        raise SystemExit(f"load: refusing {parts.hostname}: only loopback addresses (127.0.0.0/8, ::1) "
                         f"are load-tested here; it resolves to {sorted(addresses)}")
    return parts.hostname, port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    """The server's FEEREG_* settings: the registry and Redis given, rate limits raised,
    its writable directories in the work directory unless set already."""
    from feereg import config

    env = dict(os.environ)
    env["FEEREG_DATABASE_URL"] = database_url
    env["FEEREG_REDIS_URL"] = redis_url
    env.setdefault("FEEREG_SECRET_KEY", os.urandom(16).hex())
    env.setdefault("FEEREG_ENV", "production")  # refuses to start without what production needs
    raised = []
    for key in config._ENV_KEYS:
        if key.endswith("RATE_LIMIT"):
            env[f"FEEREG_{key}"] = RAISED_LIMIT
            raised.append(f"FEEREG_{key}")
        elif key.endswith("_DIR") and key != "SEARCH_DIR" and f"FEEREG_{key}" not in env:
            env[f"FEEREG_{key}"] = str(workdir / key.lower())
    if "REDIS_PREFIX" in config._ENV_KEYS:  # this run's counters apart from anyone else's
        env["FEEREG_REDIS_PREFIX"] = f"feereg-load-{os.getpid()}:"
    print(f"rate limits raised to '{RAISED_LIMIT}' (one client address): {', '.join(raised)}")
    return env


def check_redis(redis_url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the limits would not be shared
        raise SystemExit(f"load: Redis at {redis_url} does not answer ({exc}); the rate limits must be shared")


class Server:
    """`feereg serve` (gunicorn) on 127.0.0.1, stopped with SIGTERM (graceful) at the end."""

    def __init__(self, workers: int, env: dict[str, str], workdir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workdir / "server.log"
        self._log = open(self.log_path, "wb")
        command = [str(ROOT / ".venv" / "bin" / "feereg"), "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(workers)]
        print(f"server: {' '.join(command[1:])} (log {self.log_path})")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=str(ROOT), start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)  # gunicorn: finish requests, then exit
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        print(f"server: stopped (exit {self.process.returncode})")

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(line for line in text[-lines:])


# --- the registry: what to ask for, and the publishers ---------------------------------------

@dataclass
class Plan:
    zh_queries: list[str]
    en_queries: list[str]
    compares: list[str]
    fee_types: list[str]
    quotes: list[str]
    firms: list[str]
    publishers: list["Publisher"] = field(default_factory=list)


@dataclass
class Publisher:
    email: str
    firm_code: str
    item_id: int
    cookies: dict[str, str] = field(default_factory=dict)


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def plan_requests(database_url: str, n_publishers: int, seed: int, n_queries: int) -> Plan:
    """Everything the clients ask for, read from the registry once, before the run."""
    import search_bench
    from sqlalchemy import func, select

    from feereg import create_app
    from feereg.extensions import db
    from feereg.models import FeeItem, FeeType, Firm

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SEARCH_BACKEND": "null",
                      "SECRET_KEY": "load-plan", "SEARCH_DIR": tempfile.mkdtemp(prefix="feereg-load-")})
    rng = random.Random(seed)
    with app.app_context():
        queries = search_bench.build_queries(db.session, n_queries, seed)
        compares = [_compare_path(r) for r in search_bench.compare_requests()]
        quotes = [_quote_path(s) for s in search_bench.quote_requests()]
        fee_types = [f"/compare/{code}?" + urlencode({"unit": unit}) for code, unit in db.session.execute(
            select(FeeType.code, FeeType.unit).where(FeeType.abolished_from.is_(None)).order_by(FeeType.code))]
        total = db.session.scalar(select(func.count()).select_from(Firm)) or 0
        if not total:
            raise SystemExit("load: the registry holds no firms; load one with `feereg demo --items N`")
        # A sample of firms spread over the id range (firm pages are asked at random).
        step = max(1, total // 5000)
        codes = db.session.scalars(select(Firm.credit_code).where(Firm.id % step == 0)
                                   .where(Firm.status == "active").limit(5000)).all()
        firms = [f"/firms/{code}" for code in codes]
        # Publisher firms: active ones with a published item, chosen by the seed.
        candidates = db.session.execute(
            select(Firm.credit_code, func.min(FeeItem.id)).join(FeeItem, FeeItem.firm_id == Firm.id)
            .where(Firm.status == "active", FeeItem.status == "published", Firm.id % step == 0)
            .group_by(Firm.credit_code).order_by(Firm.credit_code).limit(500)).all()
        chosen = rng.sample(candidates, min(n_publishers, len(candidates)))
        publishers = [Publisher(f"load-publisher-{index + 1}@bench.invalid", code, item_id)
                      for index, (code, item_id) in enumerate(chosen)]
        db.session.remove()
        db.engine.dispose()
    return Plan([q for q in queries if _has_cjk(q)], [q for q in queries if not _has_cjk(q)],
                compares, fee_types, quotes, firms, publishers)


def _compare_path(request: dict) -> str:
    args = {k: v for k, v in request.items() if k != "fee_type" and v}
    return f"/compare/{request['fee_type']}" + ("?" + urlencode(args) if args else "")


def _quote_path(shipment) -> str:
    args = [("port", shipment.port), ("direction", shipment.direction)]
    args += [(f"count_{size}", n) for size, n in sorted(shipment.containers.items()) if n]
    args += [("bills", shipment.bills), ("storage_days", shipment.storage_days)]
    args += [("services", s) for s in sorted(shipment.services)]
    return "/quote/results?" + urlencode(args)


def create_publishers(plan: Plan, database_url: str) -> None:
    """Each publisher's account, made once with `feereg create-user` (kept for later runs)."""
    from sqlalchemy import create_engine, text

    from feereg.config import normalise_database_url

    engine = create_engine(normalise_database_url(database_url))
    with engine.connect() as conn:
        existing = dict(conn.execute(text(
            "SELECT u.email, f.credit_code FROM user_account u JOIN firm f ON f.id = u.firm_id "
            "WHERE u.email LIKE 'load-publisher-%@bench.invalid'")).all())
    engine.dispose()
    for publisher in plan.publishers:
        if existing.get(publisher.email) == publisher.firm_code:
            continue
        if publisher.email in existing:  # a registry loaded again since: a new name for the new firm
            publisher.email = publisher.email.replace("@", f"-{publisher.firm_code[-6:]}@")
            if existing.get(publisher.email) == publisher.firm_code:
                continue
        command = [str(ROOT / ".venv" / "bin" / "feereg"), "create-user", "--email", publisher.email,
                   "--role", "publisher", "--firm", publisher.firm_code, "--name", "load benchmark"]
        env = {**os.environ, "FEEREG_DATABASE_URL": database_url, "FEEREG_PASSWORD": PUBLISHER_PASSWORD,
               "FEEREG_SEARCH_BACKEND": "null"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=str(ROOT))
        if done.returncode:
            raise SystemExit(f"load: feereg create-user failed: {done.stderr.strip() or done.stdout.strip()}")
        print(f"publisher: {done.stdout.strip()} ({publisher.firm_code})")


# --- HTTP/1.1 over asyncio streams ---------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str]


class Connection:
    """One client's HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: feereg-load",
                 "Accept: text/html", "Accept-Encoding: identity"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            response = await self._read_response(method)
        except BaseException:
            await self.close()
            raise
        if response.headers.get("connection", "").lower() == "close":
            await self.close()
        return response

    async def _read_response(self, method: str) -> Response:
        reader = self.reader
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection without answering")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                pair = value.split(";", 1)[0]
                key, _, val = pair.partition("=")
                cookies[key.strip()] = val.strip()
            headers[name] = value
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()
            headers["connection"] = "close"
        return Response(status, headers, body, cookies)

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self.reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


# --- forms (login, an item's edit page) ------------------------------------------------------------

class FormFields(html.parser.HTMLParser):
    """The fields of each <form> on a page, as a browser would submit them (no buttons)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[list[tuple[str, str]]] = []
        self._form: list[tuple[str, str]] | None = None
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = []
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self._form.append((a["name"], a.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._select_first, self._select_chosen = a.get("name"), None, False
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            if self._select_first is None:
                self._select_first = value
            if "selected" in a and not self._select_chosen:
                self._form.append((self._select, value))
                self._select_chosen = True
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), []

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select:
            if not self._select_chosen and self._select_first is not None and self._form is not None:
                self._form.append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea" and self._textarea and self._form is not None:
            self._form.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self._text.append(data)


def form_with(page: bytes, field_name: str) -> list[tuple[str, str]] | None:
    parser = FormFields()
    parser.feed(page.decode("utf-8", errors="replace"))
    return next((f for f in parser.forms if any(name == field_name for name, _ in f)), None)


def _cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}


async def log_in(host: str, port: int, publisher: Publisher) -> None:
    conn = Connection(host, port)
    try:
        page = await conn.request("GET", "/account/login")
        publisher.cookies.update(page.cookies)
        fields = form_with(page.body, "email")
        if page.status != 200 or fields is None:
            raise SystemExit(f"load: /account/login answered {page.status} without a login form")
        fields = [(k, v) for k, v in fields if k not in ("email", "password")]
        fields += [("email", publisher.email), ("password", PUBLISHER_PASSWORD)]
        answer = await conn.request("POST", "/account/login", {
            "Content-Type": "application/x-www-form-urlencoded", **_cookie_header(publisher.cookies)},
            urlencode(fields).encode())
        publisher.cookies.update(answer.cookies)
        if answer.status != 302:
            raise SystemExit(f"load: logging in {publisher.email} answered {answer.status}: "
                             f"{_snippet(answer.body)}")
    finally:
        await conn.close()


# --- the run ----------------------------------------------------------------------------------------

@dataclass
class KindStats:
    times: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.samples) < ERROR_SAMPLES:
            self.samples.append(what)


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace")
    for marker in ('class="flash', "<main", "<h1"):  # the part of a page that says what went wrong
        at = text.find(marker)
        if at >= 0:
            text = text[at:]
            break
    return " ".join(text.split())[:limit]


class Run:
    def __init__(self, host: str, port: int, plan: Plan, duration: float, max_requests: int,
                 think_ms: float, seed: int):
        self.host, self.port, self.plan = host, port, plan
        self.duration, self.max_requests, self.think = duration, max_requests, think_ms / 1000
        self.seed = seed
        self.stats: dict[str, KindStats] = {}
        self.sent = 0
        self.mix = {k: w for k, w in MIX.items() if k != "publish" or plan.publishers}
        self.pool: asyncio.Queue | None = None

    def _stat(self, kind: str) -> KindStats:
        return self.stats.setdefault(kind, KindStats())

    def _path(self, kind: str, rng: random.Random) -> str:
        p = self.plan
        if kind == "search_zh":
            return "/search?" + urlencode({"q": rng.choice(p.zh_queries)})
        if kind == "search_en":
            return "/search?" + urlencode({"q": rng.choice(p.en_queries), "lang": "en"})
        return rng.choice({"compare": p.compares, "fee_type": p.fee_types, "quote": p.quotes,
                           "firm": p.firms}[kind])

    async def _timed(self, conn: Connection, kind: str, method: str, path: str,
                     headers: dict | None = None, body: bytes = b"", expect=None) -> Response | None:
        self.sent += 1
        stat = self._stat(kind)
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(conn.request(method, path, headers, body), REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            await conn.close()
            stat.error(f"timeout after {REQUEST_TIMEOUT:.0f} s: {method} {path}")
            return None
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            await conn.close()
            stat.error(f"{type(exc).__name__}: {exc}: {method} {path}")
            return None
        stat.times.append((time.perf_counter() - started) * 1000)
        ok = expect(response) if expect else 200 <= response.status < 400
        if not ok:
            stat.error(f"{response.status} {method} {path}: {_snippet(response.body)}")
            return None
        return response

    async def _publish(self, conn: Connection, publisher: Publisher) -> None:
        path = f"/publisher/items/{publisher.item_id}"
        page = await self._timed(conn, "edit_form", "GET", path, _cookie_header(publisher.cookies))
        if page is None:
            return
        publisher.cookies.update(page.cookies)
        fields = form_with(page.body, "amount")
        if fields is None:
            self._stat("edit_form").error(f"no item form on {path}: {_snippet(page.body)}")
            return
        values = dict(fields)
        amount = Decimal(values["amount"])
        # Up and down by one: every publish is a change, and amounts stay where they were.
        new_amount = amount + 1 if int(amount) % 2 == 0 else amount - 1
        effective = date.fromisoformat(values.get("effective_from") or date.today().isoformat()) + timedelta(days=40)
        changed = {"amount": f"{new_amount}", "effective_from": effective.isoformat(),
                   "reason": "load benchmark"}
        body = [(k, changed.get(k, v)) for k, v in fields if k not in ("reason",)]
        body += [("reason", changed["reason"]), ("publish", "1")]
        answer = await self._timed(
            conn, "publish", "POST", path,
            {"Content-Type": "application/x-www-form-urlencoded", **_cookie_header(publisher.cookies)},
            urlencode(body).encode(), expect=lambda r: r.status == 302)
        if answer is not None:
            publisher.cookies.update(answer.cookies)

    async def client(self, number: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + number)
        kinds, weights = list(self.mix), list(self.mix.values())
        conn = Connection(self.host, self.port)
        try:
            while time.perf_counter() < deadline and self.sent < self.max_requests:
                kind = rng.choices(kinds, weights)[0]
                if kind == "publish":
                    publisher = await self.pool.get()
                    try:
                        await self._publish(conn, publisher)
                    finally:
                        self.pool.put_nowait(publisher)
                else:
                    await self._timed(conn, kind, "GET", self._path(kind, rng))
                if self.think:  # a reader's pause, drawn (not fixed) so clients do not march in step
                    await asyncio.sleep(rng.expovariate(1 / self.think))
        finally:
            await conn.close()

    async def run(self, clients: int) -> float:
        self.pool = asyncio.Queue()
        for publisher in self.plan.publishers:
            self.pool.put_nowait(publisher)
        started = time.perf_counter()
        deadline = started + self.duration
        await asyncio.gather(*(self.client(n, deadline) for n in range(clients)))
        return time.perf_counter() - started


async def warm_up(host: str, port: int, plan: Plan, workers: int, limit_s: float,
                  server: "Server | None", cold: bool = False) -> tuple[float, list[str]]:
    """Rounds of concurrent requests of every read kind until two rounds in a row are all
    fast and fine: each worker has then built its snapshot and loaded its search columns.
    A request that fails meanwhile (a worker killed by gunicorn's timeout while it builds)
    is a server not ready yet, noted and returned; past `limit_s` the run is refused."""
    started = time.perf_counter()
    rng = random.Random(1)
    probe = Run(host, port, plan, 0, 0, 0, 1)
    fast_rounds = failed_rounds = 0
    failures: list[str] = []
    while fast_rounds < 2:
        if time.perf_counter() - started > limit_s:
            raise SystemExit(f"load: the server was not ready after {limit_s:.0f} s of warm-up; "
                             f"{len(failures)} warm-up requests failed, e.g. {failures[:3]}"
                             + (f"\n{server.log_tail()}" if server else ""))
        if server is not None and not server.alive():
            raise SystemExit(f"load: the server exited during warm-up:\n{server.log_tail()}")
        kinds = [k for k in MIX if k != "publish"] * max(1, workers)
        conns = [Connection(host, port) for _ in kinds]
        paths = [probe._path(k, rng) for k in kinds]
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(asyncio.wait_for(c.request("GET", p), limit_s)
                                         for c, p in zip(conns, paths)), return_exceptions=True)
        slowest = time.perf_counter() - t0
        for conn in conns:
            await conn.close()
        bad = [(p, a) for p, a in zip(paths, answers) if isinstance(a, BaseException) or a.status >= 400]
        for path, answer in bad:
            what = repr(answer) if isinstance(answer, BaseException) else f"{answer.status} {_snippet(answer.body, 80)}"
            failures.append(f"{path}: {what} after {time.perf_counter() - started:.0f} s")
        # The round's requests queue for `workers` processes: each worker answers about
        # len(kinds) / workers of them, one after the other.
        fast = slowest <= WARM_FAST_S * len(kinds) / max(1, workers)
        fast_rounds = fast_rounds + 1 if fast and not bad else 0
        if bad:
            # A worker killed while its request waited on the snapshot: its successor builds
            # it again from the start. Left without requests, an idle worker keeps answering
            # gunicorn's heartbeat while its warm-up thread builds, and is not killed; each
            # failed round leaves the new workers longer alone.
            failed_rounds += 1
            await asyncio.sleep(WARM_BACKOFF_S * failed_rounds)
    if not cold:
        failures += await _ask_every_quote_and_comparison(host, port, plan, workers, limit_s)
    return time.perf_counter() - started, failures


async def _ask_every_quote_and_comparison(host: str, port: int, plan: Plan, workers: int,
                                          limit_s: float) -> list[str]:
    """Each planned quote, comparison and fee-type page, asked twice per worker (the
    workers take requests as they come, so most see each once at least): a worker that has
    served for a while holds its per-shipment quote figures, which its first quote of a
    shipment computes (~0.1-0.2 s at a million items; --cold measures that minute after a
    start). Returns what failed, as warm_up does."""
    paths = (plan.quotes + plan.compares + plan.fee_types) * (2 * max(1, workers))
    batch, failures = 2 * max(1, workers), []
    for start in range(0, len(paths), batch):
        part = paths[start:start + batch]
        conns = [Connection(host, port) for _ in part]
        answers = await asyncio.gather(*(asyncio.wait_for(c.request("GET", p), limit_s) for c, p in zip(conns, part)),
                                       return_exceptions=True)
        for conn in conns:
            await conn.close()
        failures += [f"{p}: {a!r}" if isinstance(a, BaseException) else f"{p}: {a.status}"
                     for p, a in zip(part, answers) if isinstance(a, BaseException) or a.status >= 400]
    return failures


async def wait_healthy(host: str, port: int, server: Server | None, limit_s: float) -> None:
    started = time.perf_counter()
    while True:
        if server is not None and not server.alive():
            raise SystemExit(f"load: the server exited:\n{server.log_tail()}")
        conn = Connection(host, port)
        try:
            answer = await asyncio.wait_for(conn.request("GET", "/healthz"), 5)
            if answer.status == 200:
                return
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            await conn.close()
        if time.perf_counter() - started > limit_s:
            raise SystemExit(f"load: no healthy answer from /healthz within {limit_s:.0f} s")
        await asyncio.sleep(0.5)


# --- report ------------------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Summary:
    requests: int
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    client_cpu: float
    by_kind: dict[str, tuple[int, float, float, float, float, int]]


def summarise(run: Run, elapsed: float, cpu_seconds: float) -> Summary:
    by_kind = {}
    every: list[float] = []
    errors = 0
    for kind in [*MIX, "edit_form"]:
        stat = run.stats.get(kind)
        if stat is None:
            continue
        n = len(stat.times) + stat.errors
        by_kind[kind] = (n, n / elapsed, percentile(stat.times, 50), percentile(stat.times, 95),
                         percentile(stat.times, 99), stat.errors)
        every += stat.times
        errors += stat.errors
    total = len(every) + errors
    return Summary(total, total / elapsed, percentile(every, 50), percentile(every, 95), percentile(every, 99),
                   errors, cpu_seconds / elapsed, by_kind)


def print_report(run: Run, summary: Summary, elapsed: float, clients: int) -> None:
    print(f"\n{'kind':<10} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, (n, rps, p50, p95, p99, errors) in summary.by_kind.items():
        print(f"{kind:<10} {n:>9,} {rps:>8.1f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {errors:>7}")
    print(f"{'all':<10} {summary.requests:>9,} {summary.rps:>8.1f} {summary.p50:>8.1f} {summary.p95:>8.1f} "
          f"{summary.p99:>8.1f} {summary.errors:>7}")
    print(f"\n{clients} clients for {elapsed:.1f} s; client CPU {summary.client_cpu * 100:.0f} % of one core "
          f"(user+sys of this process over the run)")
    for kind, stat in run.stats.items():
        for sample in stat.samples:
            print(f"  error [{kind}] {sample}")


# --- main ----------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="an already running server (loopback only)")
    parser.add_argument("--database-url", default=os.environ.get("FEEREG_DATABASE_URL"),
                        help="the registry (default: FEEREG_DATABASE_URL)")
    parser.add_argument("--redis-url", default=os.environ.get("FEEREG_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="mean pause of a client between requests (exponential); 0: closed loop, no pause")
    parser.add_argument("--publishers", type=int, default=3, help="publisher sessions (0: no publishes)")
    parser.add_argument("--queries", type=int, default=240, help="size of search_bench's fixed query set")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--warmup-limit", type=float, default=900.0, help="seconds")
    parser.add_argument("--cold", action="store_true",
                        help="time the workers' first quotes and comparisons too (no asking them in the warm-up)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set FEEREG_DATABASE_URL (the registry the server reads)")
    if not 1 <= args.clients <= 1000 or args.duration <= 0 or args.duration > 3600 or args.max_requests < 1:
        parser.error("--clients 1..1000, --duration up to 3600 s, --max-requests at least 1")
    return args


def main(argv=None) -> int:
    # Stopped from outside (a timeout): still stop the server this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    summary, _ = run_load(parse_args(argv))
    return 1 if summary.errors else 0


def run_load(args) -> tuple[Summary, dict]:
    """The whole benchmark as main runs it; returns the summary (for scale_bench.py)."""
    if args.url:
        loopback_only(args.url)
    plan = plan_requests(args.database_url, args.publishers, args.seed, args.queries)
    print("mix (weights): " + ", ".join(f"{k} {w}" for k, w in MIX.items())
          + f"; {len(plan.zh_queries)} Chinese and {len(plan.en_queries)} English queries, "
          f"{len(plan.compares)} comparisons, {len(plan.fee_types)} fee types, {len(plan.quotes)} quotes, "
          f"{len(plan.firms)} firms, {len(plan.publishers)} publishers")
    create_publishers(plan, args.database_url)
    server = None
    workdir = Path(tempfile.mkdtemp(prefix="feereg-load-"))
    try:
        if args.url:
            url = args.url
        else:
            check_redis(args.redis_url)
            server = Server(args.workers, server_environment(args.database_url, args.redis_url, workdir), workdir)
            url = server.url
        host, port = loopback_only(url)
        summary, extra = asyncio.run(_drive(args, plan, host, port, server))
    finally:
        if server is not None:
            server.stop()
    return summary, extra


async def _drive(args, plan: Plan, host: str, port: int, server: Server | None):
    started = time.perf_counter()
    await wait_healthy(host, port, server, 120)
    warm, failures = await warm_up(host, port, plan, args.workers, args.warmup_limit, server, cold=args.cold)
    for publisher in plan.publishers:
        await log_in(host, port, publisher)
    print(f"ready: healthy, {len(plan.publishers)} publishers logged in, workers warm "
          f"({time.perf_counter() - started:.1f} s, of which warm-up {warm:.1f} s)")
    if failures:
        print(f"warm-up: {len(failures)} requests failed before the workers were ready "
              f"(not counted in the run), e.g.:")
        for failure in failures[:3]:
            print(f"  {failure}")
    run = Run(host, port, plan, args.duration, args.max_requests, args.think_ms, args.seed)
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    elapsed = await run.run(args.clients)
    cpu = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0
    summary = summarise(run, elapsed, cpu)
    print_report(run, summary, elapsed, args.clients)
    if server is not None and not server.alive():
        print(f"server died during the run:\n{server.log_tail()}")
    return summary, {"elapsed": elapsed}


if __name__ == "__main__":
    sys.exit(main())
