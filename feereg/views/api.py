"""The open data API, version 1: the blueprint, its errors, arguments, caching and bearer
tokens. The routes are in api_public.py (anyone) and api_regulator.py (regulators' tokens);
the OpenAPI document that describes them is feereg/api_spec.py.

Every answer is JSON. Errors are problem details (RFC 9457) naming what was wrong; every
answer carries a strong ETag computed from its bytes (and a Last-Modified where the data
has a change time), so a repeated request with If-None-Match or If-Modified-Since gets a
304. Public answers may be cached for a minute by anyone; regulators' answers by no one.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import date, datetime
from functools import wraps
from http import HTTPStatus
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound

from ..extensions import csrf, db, limiter
from ..models import Firm
from ..services import api_tokens, reads

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_PAGE = 100_000
#: How long anyone (browsers, proxies) may reuse a public answer without asking again.
PUBLIC_CACHE = "public, max-age=60"
PRIVATE_CACHE = "private, no-store"

bp = Blueprint("api", __name__)
csrf.exempt(bp)  # read-only, and the regulator endpoints take a bearer token, never a cookie
# One allowance per client address for the whole API, not one per endpoint.
limiter.shared_limit(lambda: current_app.config["API_RATE_LIMIT"], scope="api")(bp)


# --- errors -------------------------------------------------------------------------------

class BadParameter(BadRequest):
    """A query argument the endpoint cannot use; the answer names it and says why."""

    def __init__(self, parameter: str, message: str):
        super().__init__(description=f"{parameter}: {message}")
        self.parameter = parameter


def problem(status: int, detail: str, headers: dict | None = None, **extra) -> Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail,
            **extra}
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        mimetype="application/problem+json", headers=headers or {})
    response.headers["Cache-Control"] = "no-store"
    if not request.path.startswith(PREFIX + "/regulator/"):
        response.headers["Access-Control-Allow-Origin"] = "*"  # a site reading open data sees why it failed
    return response


_GENERIC = {
    400: "The request was not understood.",
    401: "This endpoint needs a regulator's API token: send the header 'Authorization: Bearer <token>'.",
    403: "This token's owner may not use this endpoint.",
    404: "Nothing here; the endpoints are listed at /api/v1/openapi.json.",
    429: "Too many requests; wait a moment and try again.",
    500: "Something went wrong on our side; try again later.",
}


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    described = error.description if error.description != type(error).description else None
    detail = described or _GENERIC.get(status) or HTTPStatus(status).description
    headers = {}
    extra = {}
    if isinstance(error, BadParameter):
        extra["parameter"] = error.parameter
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
        detail = f"{request.method} is not allowed on {request.path}; use {headers['Allow']}."
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="feereg"'
    if status == 429 and error.description == type(error).description:
        detail = _GENERIC[429]
    return problem(status, detail, headers, **extra)


for _code in (400, 401, 403, 404, 405, 429):
    bp.register_error_handler(_code, _http_error)
bp.register_error_handler(HTTPException, _http_error)


@bp.errorhandler(500)
def _server_error(error):
    log.error("API error on %s", request.path, exc_info=getattr(error, "original_exception", None))
    db.session.rollback()
    return problem(500, _GENERIC[500])


@bp.errorhandler(OperationalError)
def _database_unavailable(error):
    log.exception("database error")
    db.session.rollback()
    return problem(503, "The database is not available right now; try again shortly.", {"Retry-After": "30"})


@bp.before_app_request
def _unrouted_api_paths():
    """A path under /api/v1 that matches no route, or not with this method, never reaches
    the blueprint, so its error handlers do not run: answer in JSON here, not with the
    site's HTML error page."""
    error = request.routing_exception
    if error is None or not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return None
    if isinstance(error, (NotFound, MethodNotAllowed)):
        if isinstance(error, NotFound):
            error = NotFound(f"No endpoint {request.path}; the endpoints are listed at {PREFIX}/openapi.json.")
        return _http_error(error)
    return None  # a redirect (e.g. a missing trailing slash) stays a redirect


# --- answers and caching ------------------------------------------------------------------

def respond(payload: dict, *, private: bool = False, last_modified: datetime | None = None) -> Response:
    """The JSON answer, with a strong ETag from its bytes, Last-Modified when given, the
    cache policy, and 304 for a client that already has it."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode()
    response = Response(body, mimetype="application/json")
    response.set_etag(hashlib.sha256(body).hexdigest()[:40])
    if last_modified is not None:
        response.last_modified = last_modified
    response.headers["Cache-Control"] = PRIVATE_CACHE if private else PUBLIC_CACHE
    if private:
        response.vary.add("Authorization")
    else:
        response.headers["Access-Control-Allow-Origin"] = "*"  # open data: any site may read it
        response.headers["Access-Control-Expose-Headers"] = "ETag, Last-Modified, Link"
        response.vary.add("Accept-Encoding")
    links = payload.get("links") if isinstance(payload, dict) else None
    if isinstance(links, dict):
        rels = [f'<{url}>; rel="{rel}"' for rel, url in links.items() if rel in ("next", "prev", "first", "last")
                and url]
        if rels:
            response.headers["Link"] = ", ".join(rels)
    return response.make_conditional(request)


def _json_default(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- arguments ----------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def takes(*names: str):
    """The query arguments an endpoint accepts: any other one is a 400 naming it, so a
    mistyped filter never silently returns everything. The names are kept on the view
    (`api_params`) for the test that holds the OpenAPI document to them."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            for name in request.args:
                if name not in names:
                    accepted = ", ".join(names) if names else "no query parameters"
                    raise BadParameter(name, f"unknown parameter; this endpoint takes {accepted}.")
                if len(request.args.getlist(name)) > 1:
                    raise BadParameter(name, "given more than once; give it once.")
                if not request.args[name].strip():
                    # Not read as "not given": a program that sends page= or as_of= has lost a value.
                    raise BadParameter(name, "is empty; give a value or leave the parameter out.")
                if _CONTROL.search(request.args[name]):
                    # No code, name or date has one, and PostgreSQL refuses a NUL in a query outright.
                    raise BadParameter(name, "contains control characters.")
            for value in kwargs.values():
                if isinstance(value, str) and _CONTROL.search(value):
                    raise NotFound(f"No endpoint {request.path}; the endpoints are listed at {PREFIX}/openapi.json.")
            return view(*args, **kwargs)
        wrapped.api_params = names
        return wrapped
    return decorator


def text_arg(name: str, max_length: int = 100) -> str | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) > max_length:
        raise BadParameter(name, f"too long; use at most {max_length} characters.")
    return value


def choice_arg(name: str, allowed, what: str | None = None) -> str | None:
    """A closed-vocabulary argument (a port, a category...): a known code, or a 400 listing them."""
    value = text_arg(name)
    if not value:
        return None
    if value not in allowed:
        known = list(allowed)
        listed = ", ".join(known) if len(known) <= 20 else f"{', '.join(known[:20])}, …"
        raise BadParameter(name, f"'{value[:40]}' is not a known {what or name}; use one of {listed}.")
    return value


def scope_arg(name: str, allowed, what: str | None = None) -> str | None:
    """A scope argument: a code, or `any` for the items that apply to any (stored as "")."""
    if (request.args.get(name) or "").strip() == "any":
        return ""
    return choice_arg(name, list(allowed) + ["any"], what)


def date_arg(name: str = "as_of") -> date | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, f"'{raw[:40]}' is not a date; write it as YYYY-MM-DD, e.g. 2025-06-30.") from None


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, f"'{raw[:40]}' is not a whole number.") from None
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}.")
    return value


def paging(max_page: int = MAX_PAGE) -> tuple[int, int]:
    return int_arg("page", 1, 1, max_page), int_arg("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)


def firm_arg(name: str = "firm") -> Firm | None:
    code = text_arg(name, 40)
    if not code:
        return None
    firm = reads.firm_by_code(db.session, code)
    if firm is None:
        raise BadParameter(name, f"no firm has the credit code '{code}'.")
    return firm


def page_links(page: int, pages: int) -> dict:
    """Links to this listing's other pages, with the request's other arguments kept."""
    def url(number: int) -> str:
        args = {k: v for k, v in request.args.items() if k != "page"}
        if number > 1:
            args["page"] = number
        return request.path + ("?" + urlencode(args) if args else "")

    return {"self": url(page), "first": url(1), "last": url(pages),
            "next": url(page + 1) if page < pages else None,
            "prev": url(min(page - 1, pages)) if page > 1 else None}


def listing(items: list, total: int, page: int, per_page: int, **extra) -> dict:
    pages = max(1, -(-total // per_page))
    return {**extra, "items": items, "total": total, "page": page, "per_page": per_page, "pages": pages,
            "links": page_links(page, pages)}


# --- bearer tokens ------------------------------------------------------------------------

def regulator_token(view):
    """The endpoint needs the bearer token of an active regulator: 401 without one or with
    a token that is unknown, revoked or whose account is disabled; 403 when its owner is not
    (or no longer) a regulator. Cookies are not read: a logged-in browser gets a 401 too."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        scheme, _, presented = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return problem(401, _GENERIC[401], {"WWW-Authenticate": 'Bearer realm="feereg"'})
        token = api_tokens.verify_token(db.session, presented.strip())
        if token is None:
            db.session.rollback()
            return problem(401, "The token is not valid: it is unknown, revoked, or its account is disabled.",
                           {"WWW-Authenticate": 'Bearer realm="feereg", error="invalid_token"'})
        db.session.commit()  # last_used_at
        if token.user.role != "regulator":
            return problem(403, "Only regulators may read this; the token's owner is not a regulator.")
        g.api_user = token.user
        return view(*args, **kwargs)
    wrapped.api_params = getattr(view, "api_params", ())
    return wrapped
