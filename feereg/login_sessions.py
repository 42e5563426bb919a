"""A login's life in the signed session cookie: begun afresh, bound to the password, bounded
in time.

- A login starts a new session: nothing from before it survives but the chosen language, so
  a session (or a CSRF token) planted in the browser before the login is worth nothing after.
- The session carries a stamp derived from the password hash (keyed with SECRET_KEY): when
  the password changes, every other session of the account stops being a login.
- A login lasts PERMANENT_SESSION_LIFETIME at most (Flask also refuses a cookie signed longer
  ago than that) and ends after SESSION_IDLE_TIMEOUT without a request; activity re-signs the
  cookie at most once a minute, so pages do not each carry a Set-Cookie.
- A disabled account is logged out at its next request.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from flask import current_app, session
from flask_login import login_user, logout_user

STAMP, LOGIN_AT, SEEN_AT = "_auth", "_login_at", "_seen"
#: Activity moves the idle clock on at most this often (seconds).
TOUCH_EVERY = 60


def _now() -> float:
    return time.time()


def begin(user) -> None:
    """Log `user` in on a new session."""
    _fresh_session()
    login_user(user)
    now = int(_now())
    session[STAMP], session[LOGIN_AT], session[SEEN_AT] = stamp(user), now, now


def end() -> None:
    logout_user()
    remember = session.get("_remember")  # Flask-Login's note to delete a remember-me cookie
    _fresh_session()
    if remember:
        session["_remember"] = remember


def stamp(user) -> str:
    key = current_app.secret_key
    key = key if isinstance(key, bytes) else str(key).encode()
    return hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256).hexdigest()[:32]


def still_valid(user) -> bool:
    """Whether the session's login of `user` still holds; moves the idle clock on."""
    if not user.active or not hmac.compare_digest(str(session.get(STAMP, "")), stamp(user)):
        return False
    now = _now()
    login_at, seen = session.get(LOGIN_AT, 0), session.get(SEEN_AT, 0)
    if now - login_at > current_app.permanent_session_lifetime.total_seconds():
        return False
    if now - seen > current_app.config["SESSION_IDLE_TIMEOUT"]:
        return False
    if now - seen >= TOUCH_EVERY:
        session[SEEN_AT] = int(now)
    return True


def expire() -> None:
    """Forget a login that no longer holds (the visitor is anonymous from this request on)."""
    _fresh_session()


def _fresh_session() -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
