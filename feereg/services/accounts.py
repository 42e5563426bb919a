"""User accounts: creation, password changes, and login with lock-out."""
from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Firm, User
from ..models.types import utcnow
from . import audit, passwords
from .errors import InvalidInput

#: After this many failed logins in a row the account is locked for LOCKOUT.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
ROLES = ("publisher", "regulator", "admin")

def password_matches(user: User, password: str) -> bool:
    return passwords.verify(user.password_hash, password)


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
        problems = passwords.problems(password, email, name)
        if problems:
            raise InvalidInput(" ".join(str(p) for p in problems), problems)
    user = User(email=email, name=name, password_hash=passwords.hash_password(password), role=role,
                firm_id=firm.id if firm else None)
    session.add(user)
    session.flush()
    audit.record(session, "user.create", actor or user, user, firm.id if firm else None, role=role)
    return user


class LoginRefused(Exception):
    pass


class WrongPassword(InvalidInput):
    """The current password given to change it is not the account's."""


def refusal() -> str:
    """One message for every refused login — unknown e-mail, wrong password, locked account —
    so that the page never tells whether an account exists or is locked."""
    return str(_l("Wrong e-mail or password. After %(n)s failed attempts an account is locked for %(minutes)s "
                  "minutes.", n=MAX_FAILED_LOGINS, minutes=int(LOCKOUT.total_seconds() // 60)))


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the user or raise LoginRefused; counts failures and locks the account."""
    user = find_by_email(session, email or "")
    now = utcnow()
    if user is None:
        passwords.hash_password(password or "x")  # same work either way: no account-probing by timing
        audit.record(session, "login.failed", None, None, email=(email or "")[:200])
        raise LoginRefused(refusal())
    matches = password_matches(user, password or "")  # checked even when locked: the same time either way
    if user.locked_until and user.locked_until > now:
        audit.record(session, "login.locked", user, user)
        raise LoginRefused(refusal())
    if not matches:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
            audit.record(session, "user.locked", user, user)
        audit.record(session, "login.failed", user, user)
        raise LoginRefused(refusal())
    if not user.active:
        raise LoginRefused(_l("This account is disabled."))
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)  # the current parameters, from now on
    user.failed_logins, user.locked_until = 0, None
    audit.record(session, "login", user, user, user.firm_id)
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    """A person's own password change: the current one proves it is them."""
    if not password_matches(user, current or ""):
        raise WrongPassword(_l("The current password is not right."))
    problems = passwords.problems(new or "", user.email, user.name or "")
    if password_matches(user, new or ""):
        problems.append(_l("The new password must differ from the current one."))
    if problems:
        raise InvalidInput(" ".join(str(p) for p in problems), problems)
    user.password_hash = passwords.hash_password(new)
    audit.record(session, "password.change", user, user, user.firm_id)
