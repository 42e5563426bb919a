"""Bearer tokens for the regulator endpoints of the open data API.

A token is 256 random bits, shown once when created; only its SHA-256 is stored. A
presented token is hashed and looked up by that hash (the column is unique), and the
stored and computed digests are compared in constant time. Tokens are issued to
regulators only, and the API checks the role again on every use: a token outlives
neither its owner's regulator role, nor the account, nor its revocation.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import ApiToken, User
from ..models.types import utcnow
from . import audit
from .errors import InvalidInput, PermissionDenied

#: Marks a feereg token in a config file or a secret scanner's findings.
PREFIX = "feereg_"
MAX_NAME = 100
#: Active tokens one person may hold: one per script or machine, not one per request.
MAX_ACTIVE = 10
#: last_used_at is refreshed at most this often, so reads do not each become a write.
TOUCH_EVERY = timedelta(minutes=1)
#: Longer than any token we issue; anything longer is refused without hashing.
MAX_TOKEN_LENGTH = 200


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_of(session: Session, user: User) -> list[ApiToken]:
    """The user's tokens, active first, newest first."""
    return list(session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())))


def create_token(session: Session, user: User, name: str, actor=None) -> tuple[ApiToken, str]:
    """Issue a token to a regulator; returns the row and the token in clear, which is not
    kept anywhere and cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_l("Give the token a name, e.g. the script that will use it."))
    if len(name) > MAX_NAME:
        raise InvalidInput(_l("Use at most %(n)s characters for the name.", n=MAX_NAME))
    if user.role != "regulator" or not user.active:
        raise PermissionDenied(_l("API tokens are issued to active regulator accounts only."))
    active = session.scalar(select(func.count()).select_from(ApiToken)
                            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))) or 0
    if active >= MAX_ACTIVE:
        raise InvalidInput(_l("You already hold %(n)s active tokens; revoke one you no longer use first.",
                              n=MAX_ACTIVE))
    clear = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=digest(clear))
    session.add(token)
    session.flush()
    audit.record(session, "api_token.create", actor or user, token, None, name=name, owner=user.email)
    return token, clear


def revoke_token(session: Session, token: ApiToken, actor) -> ApiToken:
    """Revoke a token: its owner may, and an operator (the CLI acts as one)."""
    if getattr(actor, "role", None) != "admin" and getattr(actor, "id", None) != token.user_id:
        raise PermissionDenied(_l("You may only revoke your own tokens."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
        audit.record(session, "api_token.revoke", actor, token, None, name=token.name)
    return token


def verify_token(session: Session, presented: str | None) -> ApiToken | None:
    """The active token `presented` is, or None. Marks it used (flushed; the caller commits).

    The role is not checked here: the caller tells "who are you" (401) from "you may not"
    (403)."""
    if not presented or len(presented) > MAX_TOKEN_LENGTH or not presented.startswith(PREFIX):
        return None
    wanted = digest(presented)
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == wanted))
    if token is None or not hmac.compare_digest(token.token_hash, wanted):
        return None
    if token.revoked_at is not None or token.user is None or not token.user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
        session.flush()
    return token
