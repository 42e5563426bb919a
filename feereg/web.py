"""Request-level glue: who is logged in, language, template helpers, errors, headers."""
from __future__ import annotations

import logging
from functools import wraps

from flask import Flask, abort, current_app, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import BadRequest

from . import codes
from .extensions import db, login_manager
from .i18n import current_language
from .models import User

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


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

    @login_manager.user_loader
    def load_user(user_id: str):
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None

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
        limit = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return _error_page(413, _("The upload is too large (the limit is %(n)s MB).", n=limit)), 413

    @app.errorhandler(429)
    def too_many(error):
        return _error_page(429, _("Too many requests; wait a moment and try again.")), 429

    @app.errorhandler(OperationalError)
    def database_unavailable(error):
        log.exception("database error")
        db.session.rollback()
        return _error_page(503, _("The database is not available right now; nothing was changed. Try again shortly.")), 503

    @app.errorhandler(500)
    def server_error(error):
        return _error_page(500, _("Something went wrong on our side; nothing was changed.")), 500


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
