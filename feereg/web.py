"""Request-level glue: who is logged in, language, template helpers, errors, headers."""
from __future__ import annotations

import logging
import time
from functools import wraps

from flask import Flask, abort, current_app, g, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from . import codes, login_sessions
from .extensions import db, limiter, login_manager
from .i18n import current_language
from .models import User

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
#: Browser features no page of the registry uses, refused to any script that might get in.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


#: The largest row number an INTEGER column holds: PostgreSQL refuses to compare with more.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route is a row's number, 1 to MAX_ROW_ID: a larger one matches no
    route (404) instead of reaching the database as an error."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.update(min=1, max=MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


def use_row_ids(app: Flask) -> None:
    """Before any route is added: a rule looks its converter up when it is added."""
    app.url_map.converters["int"] = RowIdConverter


def role_required(*roles: str):
    """A view only these roles may open; anonymous users are sent to log in."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def init_app(app: Flask) -> None:
    login_manager.login_view = "account.login"
    login_manager.login_message = None
    _cookie_settings(app.config)

    @login_manager.user_loader
    def load_user(user_id: str):
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None or not login_sessions.still_valid(user):
            login_sessions.expire()  # disabled, password changed, idle or too old: log in again
            return None
        return user

    @app.before_request
    def refuse_nul():
        # No address of the site has a NUL, and PostgreSQL refuses one in any text it is given
        # (a database error in whichever view passed it on). The API names the parameter itself.
        if request.blueprint == "api":
            return
        if "\x00" in request.path:
            abort(404)
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.args.lists()):
            abort(400, description=_("The address contains a NUL character."))

    @app.before_request
    def remember_language():
        chosen = request.args.get("lang")
        if chosen in app.config["LANGUAGES"]:
            session["lang"] = chosen

    @app.context_processor
    def helpers():
        lang = current_language()
        return {
            "lang": lang,
            "codes": codes,
            "label": lambda table, code: codes.label(getattr(codes, table), code, lang),
            "port_labels": lambda value: "、".join(codes.label(codes.PORTS, p, lang) for p in codes.split_list(value)) or codes.ANY.label(lang),
            "other_lang": "en" if lang == "zh" else "zh",
            "lang_url": _lang_url,
            "page_url": _page_url,
        }

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if request.is_secure and app.config.get("HSTS"):
            response.headers.setdefault("Strict-Transport-Security", app.config["HSTS"])
        if request.endpoint and request.endpoint != "static":
            response.headers.setdefault("Vary", "Cookie")
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _error_page(400, _("The form expired or was not sent from this site. Reload the page and try again.")), 400

    @app.errorhandler(400)
    def bad_request(error):
        # A view's own reason (already in the reader's language), else a general one: never
        # Werkzeug's bare English page.
        message = error.description if error.description != BadRequest.description else None
        return _error_page(400, message or _("The request was not understood; check the address and try again.")), 400

    @app.errorhandler(403)
    def forbidden(error):
        return _error_page(403, _("You do not have permission to see this page.")), 403

    @app.errorhandler(404)
    def not_found(error):
        return _error_page(404, _("This page does not exist.")), 404

    @app.errorhandler(405)
    def method_not_allowed(error):
        allow = {"Allow": ", ".join(error.valid_methods)} if error.valid_methods else {}
        return _error_page(405, _("This page cannot be used that way; follow a link or a button on the site.")), 405, allow

    @app.errorhandler(413)
    def too_large(error):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if not limit:  # a limit of the server in front, not ours
            return _error_page(413, _("The upload is too large.")), 413
        size = f"{limit / 2 ** 20:.3g} MB" if limit >= 2 ** 20 else f"{max(1, limit // 1024)} KB"
        return _error_page(413, _("The upload is too large (the limit is %(size)s).", size=size)), 413

    @app.errorhandler(429)
    def too_many(error):
        # Flask-Limiter adds Retry-After (RATELIMIT_HEADERS_ENABLED); the page says it in words.
        limit = limiter.current_limit
        wait = int(limit.reset_at - time.time()) + 1 if limit is not None else 0
        if wait > 0:
            message = _("Too many requests; wait %(n)s seconds and try again.", n=wait)
        else:
            message = _("Too many requests; wait a moment and try again.")
        return _error_page(429, message), 429

    @app.errorhandler(DBAPIError)
    def database_unavailable(error):
        # Down, restarting, unreachable, or this request's connection cut (SQLAlchemy then
        # marks it invalidated): the transaction is lost whole, so nothing was changed.
        if not (isinstance(error, OperationalError) or error.connection_invalidated):
            raise error
        log.exception("database error")
        try:
            db.session.rollback()
        except DBAPIError:
            log.warning("rollback after a database error failed too", exc_info=True)
        # The page must not need the database to say it is down: shown as to a visitor
        # (flask_login would load the user again, from the database).
        g._login_user = login_manager.anonymous_user()
        return (_error_page(503, _("The database is not available right now; nothing was changed. Try again shortly.")),
                503, {"Retry-After": "30"})

    @app.errorhandler(500)
    def server_error(error):
        return _error_page(500, _("Something went wrong on our side; nothing was changed.")), 500


def _cookie_settings(config) -> None:
    """Cookies follow SESSION_COOKIE_SECURE: with it off (plain-http development, see
    config.py) the remember cookie is not Secure either, and the session cookie loses its
    __Host- prefix, which browsers refuse on a cookie that is not Secure."""
    if not config.get("SESSION_COOKIE_SECURE"):
        config["REMEMBER_COOKIE_SECURE"] = False
        name = config.get("SESSION_COOKIE_NAME") or "session"
        for prefix in ("__Host-", "__Secure-"):
            if name.startswith(prefix):
                config["SESSION_COOKIE_NAME"] = name[len(prefix):]


def _error_page(status: int, message: str):
    return render_template("error.html", status=status, message=message)


def _page_url(number: int) -> str:
    args = {**(request.view_args or {}), **request.args.to_dict(), "page": number}
    return url_for(request.endpoint, **args)


def _lang_url(lang: str) -> str:
    args = request.args.to_dict()
    args["lang"] = lang
    from urllib.parse import urlencode

    return request.path + "?" + urlencode(args)
