"""User accounts: creation, password checks and login with lock-out."""
from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Firm, User
from ..models.types import utcnow
from . import audit
from .errors import InvalidInput

_STRONG = PasswordHasher()
#: Only for test suites (config PASSWORD_HASH_FAST): same algorithm, minimal cost.
_FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def _hasher() -> PasswordHasher:
    return _FAST if current_app.config.get("PASSWORD_HASH_FAST") else _STRONG

#: After this many failed logins in a row the account is locked for LOCKOUT.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
ROLES = ("publisher", "regulator", "admin")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problems(password: str, email: str = "") -> list:
    min_length = current_app.config.get("PASSWORD_MIN_LENGTH", 10)
    problems = []
    if len(password) < min_length:
        problems.append(_l("Use at least %(n)s characters.", n=min_length))
    if password.isdigit() or password.isalpha():
        problems.append(_l("Mix letters with digits or symbols."))
    if email and email.split("@")[0].lower() in password.lower():
        problems.append(_l("Do not use your e-mail name in the password."))
    return problems


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(session: Session, email: str, password: str, role: str, firm: Firm | None = None,
                name: str = "", actor=None, check_policy: bool = True) -> User:
    email = email.strip().lower()
    if role not in ROLES:
        raise InvalidInput(_l("Unknown role %(role)s.", role=role))
    if role == "publisher" and firm is None:
        raise InvalidInput(_l("A publisher belongs to a firm."))
    if role != "publisher" and firm is not None:
        raise InvalidInput(_l("Only publishers belong to a firm."))
    if find_by_email(session, email):
        raise InvalidInput(_l("An account with this e-mail already exists."))
    if check_policy:
        problems = password_problems(password, email)
        if problems:
            raise InvalidInput(" ".join(str(p) for p in problems), problems)
    user = User(email=email, name=name, password_hash=hash_password(password), role=role,
                firm_id=firm.id if firm else None)
    session.add(user)
    session.flush()
    audit.record(session, "user.create", actor or user, user, firm.id if firm else None, role=role)
    return user


class LoginRefused(Exception):
    pass


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the user or raise LoginRefused; counts failures and locks the account."""
    user = find_by_email(session, email or "")
    now = utcnow()
    if user is None:
        _hasher().hash(password or "x")  # same work either way: no account-probing by timing
        audit.record(session, "login.failed", None, None, email=(email or "")[:200])
        raise LoginRefused(_l("Wrong e-mail or password."))
    if user.locked_until and user.locked_until > now:
        audit.record(session, "login.locked", user, user)
        raise LoginRefused(_l("Too many failed attempts; this account is locked for a while. Try again later."))
    if not password_matches(user, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
            audit.record(session, "user.locked", user, user)
        audit.record(session, "login.failed", user, user)
        raise LoginRefused(_l("Wrong e-mail or password."))
    if not user.active:
        raise LoginRefused(_l("This account is disabled."))
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until = 0, None
    audit.record(session, "login", user, user, user.firm_id)
    return user
