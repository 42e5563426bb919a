"""HTTP caching of the public pages: a validator computed before the page is rendered.

A public page (home, directory, a firm, search, compare, quote, feeds, downloads) is a
function of five things: the registry's data, the reader's language, the address with
its query string, the registry's calendar day (effective-dated fees change at midnight
in Shenzhen), and the code and settings that render it. The ETag is a digest of those
five, so it is known without rendering; a request whose If-None-Match (or, without one,
If-Modified-Since) still matches is answered 304 before the view runs. Werkzeug's
conditional rules decide, as for the API's answers (feereg/views/api.py), and the day
boundary is the API's too (open_data.start_of_today_utc).

The registry's data enters as its *state*, a token that changes whenever public data may
have changed. It must change at once for every worker of every server, so it lives
outside process memory:

- with Redis (feereg/cache.py): a random token, replaced after every commit that wrote a
  public table (a Session after_commit listener, running after the search index's), and
  expiring after STATE_TTL so a change made behind the application's back (SQL by hand, a
  restore) is picked up within the hour; `feereg cache clear` renews it at once. A process
  that finds Redis gone renews the token when Redis answers again: a renewal it missed
  meanwhile cannot leave an old token in place. While Redis is down pages carry no
  validator (they are still served, and still cacheable for max-age);
- without Redis (one server): the newest fee item version and audit event, read in one
  statement of four index probes. Sign-ins are audited too, so here a sign-in renews the
  pages' validators as well: correct, merely less thrifty. Last-Modified is then the time
  the newest row was written, which a long transaction commits later: If-Modified-Since
  alone can miss such a change for a while; the ETag cannot.

Whoever is signed in gets `private, no-store` and never a 304: pages show their name and
carry CSRF tokens. So does any page that generated a CSRF token or shows a flashed
message, signed in or not. POST answers are `no-store`. The open data API keeps its own
policy (views/api.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from flask import Flask, Response, current_app, g, has_app_context, request, session
from flask_login import current_user
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from werkzeug.http import is_resource_modified

from .cache import CacheUnavailable, shared_cache

log = logging.getLogger(__name__)

_EXTENSION = "feereg.http_cache"

#: The pages whose content is a function of the five inputs above and nothing else. A page
#: not listed is never answered 304 (a safe default for a new page).
CACHEABLE = frozenset({
    "public.home", "public.directory", "public.firm", "public.firm_history", "public.item_history",
    "public.catalog", "public.search", "public.compare_index", "public.compare", "public.quote_form",
    "public.quote_results", "public.api_docs",
    "public.feed_registry", "public.feed_firm", "public.feed_fee_type", "public.feed_port",
    "public.firm_schedule_file", "public.compare_file", "public.quote_file", "public.search_file",
})

#: Pages reused longer than HTTP_CACHE_MAX_AGE: feed readers poll (views/public_feeds.py
#: sets the same on the feeds it renders; here it also goes on the 304s it never renders).
MAX_AGE = {"public.feed_registry": 300, "public.feed_firm": 300, "public.feed_fee_type": 300,
           "public.feed_port": 300}

#: Tables whose rows no public page shows: writing only these leaves the state alone.
PRIVATE_TABLES = frozenset({"user_account", "api_token", "audit_event", "pending_import", "job"})

#: Seconds a Last-Modified date must lie in the past before it is sent (see validator).
LAST_MODIFIED_SETTLED = 1.0
STATE_KEY = "registry-state"
#: Seconds a state token lives in Redis without a change: the bound on how long a change
#: made outside the application (SQL by hand, a restore) can go unnoticed.
STATE_TTL = 3600
#: Seconds the first sighting of a release is remembered (one key per release deployed).
RELEASE_TTL = 30 * 86400
_CHANGED = "feereg.public_tables_written"
#: Settings that cannot change what a page shows, or that differ from server to server
#: (paths) and would give the same page a different ETag on each.
_SETTINGS_SKIPPED = ("SECRET", "PASSWORD", "_URL", "_URI", "_DIR", "_PATH", "_FILE")


# --- the validator ------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    from .services import hooks  # noqa: F401  its after_commit listener (the search index) runs first

    _listen_to_sessions()
    app.extensions[_EXTENSION] = {"settings": _settings_digest(app), "code_seen": None,
                                  "recoveries": 0}
    app.before_request(_answer_if_unchanged)
    app.after_request(_cache_headers)


def registry_state(app: Flask | None = None) -> tuple[str, datetime] | None:
    """The registry's state token and when it last changed (UTC), or None while it cannot be
    known (Redis configured but not answering)."""
    app = app or current_app._get_current_object()
    cache = shared_cache(app)
    if cache is None:
        return _database_state()
    try:
        ours = app.extensions[_EXTENSION]
        value = cache.get(STATE_KEY)
        if cache.recoveries != ours["recoveries"]:
            # Redis was away: a renewal any process owed meanwhile may never have landed.
            _renew(cache)
            ours["recoveries"] = cache.recoveries
            value = cache.get(STATE_KEY)
        if value is None:
            cache.add(STATE_KEY, _new_token(), ttl=STATE_TTL)  # first worker to ask wins
            value = cache.get(STATE_KEY) or _new_token()
    except CacheUnavailable:
        return None
    token, _, at = value.partition(" ")
    try:
        changed = datetime.fromtimestamp(float(at), timezone.utc)
    except ValueError:
        changed = datetime.now(timezone.utc)
    return token, changed


def mark_changed(app: Flask | None = None) -> None:
    """Renew the registry's state now: after a commit wrote public data (done for every
    Session commit by the listener below), or after derived data that pages show was
    rewritten outside one (a search index updated by a background job)."""
    app = app or current_app._get_current_object()
    cache = shared_cache(app)
    if cache is None:
        return  # the database state follows by itself
    try:
        _renew(cache)
    except CacheUnavailable:
        log.warning("could not renew the pages' validators in Redis; they are renewed when Redis answers again "
                    "(or run `feereg cache clear`)")


def _renew(cache) -> None:
    cache.set(STATE_KEY, _new_token(), ttl=STATE_TTL)


def _new_token() -> str:
    return f"{uuid.uuid4().hex} {_now():.3f}"


def _now() -> float:
    return time.time()


def _database_state() -> tuple[str, datetime]:
    from .extensions import db
    from .models import AuditEvent, FeeItemVersion

    V, A = FeeItemVersion, AuditEvent
    row = db.session.execute(select(
        select(func.max(V.id)).scalar_subquery(), select(func.max(V.published_at)).scalar_subquery(),
        select(func.max(A.id)).scalar_subquery(), select(func.max(A.at)).scalar_subquery())).one()
    # Times as well as ids: ids start again after a database is emptied and filled (a restore).
    token = "db " + " ".join(str(part) for part in row)
    times = [t for t in (row[1], row[3]) if t is not None]
    changed = max(times).replace(tzinfo=timezone.utc) if times else datetime(2000, 1, 1, tzinfo=timezone.utc)
    return token, changed


def validator() -> tuple[str, datetime | None] | None:
    """This request's ETag and Last-Modified, before anything is rendered."""
    from .i18n import current_language
    from .services.open_data import start_of_today_utc
    from .services.registry import today

    state = registry_state()
    if state is None:
        return None
    token, changed = state
    if shared_cache() is not None:
        g.registry_token = token
    ours = current_app.extensions[_EXTENSION]
    digest = hashlib.sha256("\n".join((
        _code_digest(), ours["settings"], token, current_language(), today().isoformat(),
        request.path, request.query_string.decode("latin-1"),
    )).encode()).hexdigest()[:32]
    day_began = start_of_today_utc().replace(tzinfo=timezone.utc)
    last_modified = max(changed, day_began, _code_seen(ours))
    if _now() - last_modified.timestamp() < LAST_MODIFIED_SETTLED:
        # Last-Modified counts whole seconds: a change later within this second would carry
        # the same date, and If-Modified-Since would call the old page current. Only the
        # ETag, then; from the next second on, any later change has a later date.
        last_modified = None
    return digest, last_modified


# --- the request ------------------------------------------------------------------------

def _personal() -> bool:
    """Signed in, or a flashed message waiting: the page is this reader's alone."""
    return bool(current_user.is_authenticated or session.get("_flashes"))


def state_seen() -> str | None:
    """The registry's state token this request read from Redis before its view ran, or None
    (no Redis, Redis not answering, a page not validated). Two requests that saw the same
    token saw no commit of public data between them, in any process."""
    return g.get("registry_token")


def _answer_if_unchanged():
    g.pop("http_validator", None)
    g.pop("registry_token", None)
    if request.method not in ("GET", "HEAD") or request.endpoint not in CACHEABLE or request.routing_exception:
        return None
    # Before the view runs: rendering takes the flashed messages out of the session.
    g.http_personal = _personal()
    if g.http_personal:
        return None
    found = validator()
    if found is None:
        return None
    g.http_validator = found
    etag, last_modified = found
    if is_resource_modified(request.environ, etag=etag, last_modified=last_modified):
        return None
    return Response(status=304)  # _cache_headers adds the validators and the policy


def _cache_headers(response: Response) -> Response:
    if request.endpoint in (None, "static") or request.blueprint == "api":
        return response  # static files: send_file's own validators; the API: its own policy
    if request.method not in ("GET", "HEAD"):
        response.headers.setdefault("Cache-Control", "no-store")
        return response
    csrf_token = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g
    personal = g.get("http_personal") or _personal()
    # A view that set its own policy (a file from /data, a job's page) knows its content.
    view_decided = "Cache-Control" in response.headers and request.endpoint not in CACHEABLE
    if csrf_token or (personal and not view_decided):
        # The reader's name, a CSRF token bound to their session, a message meant for them:
        # no cache may keep this, let alone give it to someone else.
        response.headers["Cache-Control"] = "private, no-store"
        for name in ("ETag", "Last-Modified"):
            response.headers.pop(name, None)
        return response
    if request.endpoint not in CACHEABLE or response.status_code not in (200, 304):
        response.headers.setdefault("Cache-Control", "no-cache")
        return response
    found = g.get("http_validator")
    if found is not None:
        etag, last_modified = found
        response.set_etag(etag, weak=True)  # the same content may be encoded differently
        if response.last_modified is None and last_modified is not None:  # a view's own is closer (feeds)
            response.last_modified = last_modified
    max_age = response.cache_control.max_age  # a view's own
    if max_age is None:
        max_age = MAX_AGE.get(request.endpoint, current_app.config["HTTP_CACHE_MAX_AGE"])
    # A page that set the session cookie (the ?lang= choice) is not for shared caches.
    scope = "private" if session.modified else "public"
    response.headers["Cache-Control"] = f"{scope}, max-age={max_age}" if max_age else f"{scope}, no-cache"
    return response


# --- what the validator is made of -----------------------------------------------------

@lru_cache(maxsize=1)
def _code_digest() -> str:
    """The package, its translations and templates: a new release renders pages differently."""
    from . import PROJECT_ROOT

    digest = hashlib.sha256()
    for root in (Path(__file__).resolve().parent, PROJECT_ROOT / "templates"):
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _settings_digest(app: Flask) -> str:
    """The settings that can change a page (exchange rates, rule thresholds, page size...)."""
    kept = {k: v for k, v in app.config.items()
            if k.isupper() and not any(part in k for part in _SETTINGS_SKIPPED)}
    # Values JSON cannot hold are named by type: a function's repr differs from process to process.
    plain = lambda v: str(v) if isinstance(v, (timedelta, date, Decimal)) else type(v).__qualname__  # noqa: E731
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=plain).encode()).hexdigest()


def _code_seen(ours: dict) -> datetime:
    """When this release was first seen, for Last-Modified: shared through Redis when there
    is one (every server agrees), else when this process started using it."""
    if ours["code_seen"] is not None:
        return ours["code_seen"]
    seen = _now()
    cache = shared_cache()
    if cache is not None:
        name = f"release-seen:{_code_digest()[:16]}:{ours['settings'][:16]}"
        try:
            cache.add(name, f"{seen:.3f}", ttl=RELEASE_TTL)
            seen = float(cache.get(name) or seen)
        except (CacheUnavailable, ValueError):
            return datetime.fromtimestamp(seen, timezone.utc)  # try again next time
    ours["code_seen"] = datetime.fromtimestamp(seen, timezone.utc)
    return ours["code_seen"]


# --- renewing the state after a commit ------------------------------------------------

_listening = threading.Lock()
_listeners_installed = False


def _listen_to_sessions() -> None:
    global _listeners_installed
    with _listening:
        if _listeners_installed:
            return
        event.listen(Session, "after_flush", _note_flush)
        event.listen(Session, "do_orm_execute", _note_statement)
        event.listen(Session, "before_commit", _note_derived_work)
        event.listen(Session, "after_commit", _renew_after_commit)
        event.listen(Session, "after_rollback", _forget)
        event.listen(Session, "after_soft_rollback", lambda session, previous: _forget(session))
        _listeners_installed = True


def _note_flush(session: Session, flush_context) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(getattr(obj, "__table__", None), "name", None)
        if table not in PRIVATE_TABLES:
            session.info[_CHANGED] = True
            return


def _note_statement(state) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(getattr(state.statement, "table", None), "name", None)
        if table not in PRIVATE_TABLES:
            state.session.info[_CHANGED] = True


def _note_derived_work(session: Session) -> None:
    # Versions written outside the ORM (a bulk load's COPY) announce themselves to the hooks.
    from .services import hooks

    if session.info.get(hooks._PENDING_KEY) or session.info.get(hooks._BULK_KEY):
        session.info[_CHANGED] = True


def _renew_after_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False) and has_app_context() and _EXTENSION in current_app.extensions:
        mark_changed()


def _forget(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def cache_clear(app: Flask) -> bool:
    """Renew the state now (`feereg cache clear`); False when there is no Redis to renew."""
    cache = shared_cache(app)
    if cache is None:
        return False
    _renew(cache)
    return True

