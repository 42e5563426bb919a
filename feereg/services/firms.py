"""Firms: registration (with the first publisher account), profile, suspension."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import codes, credit_code
from ..models import Firm, FirmPort, User
from . import accounts, audit
from .errors import InvalidInput, PermissionDenied


def find_by_credit_code(session: Session, code: str) -> Firm | None:
    return session.scalar(select(Firm).where(Firm.credit_code == credit_code.normalise(code)))


def _set_ports(firm: Firm, ports: list[str]) -> None:
    wanted = sorted(set(ports))
    firm.ports = [FirmPort(port=p) for p in wanted]


def register_firm(session: Session, values: dict, email: str, password: str, name: str = "") -> tuple[Firm, User]:
    """A firm's staff register the firm and its first publisher account."""
    code = credit_code.validate(values["credit_code"])
    if find_by_credit_code(session, code):
        raise InvalidInput(_l("A firm with this credit code is already registered; ask its publisher for access."))
    firm = create_firm(session, {**values, "credit_code": code})
    user = accounts.create_user(session, email, password, "publisher", firm, name=name)
    audit.record(session, "firm.register", user, firm, firm.id)
    return firm, user


def create_firm(session: Session, values: dict, actor=None) -> Firm:
    if values["category"] not in codes.CATEGORIES:
        raise InvalidInput(_l("Unknown firm category."))
    firm = Firm(
        credit_code=credit_code.validate(values["credit_code"]),
        name_zh=values["name_zh"].strip(), name_en=(values.get("name_en") or "").strip(),
        category=values["category"], contact_phone=values.get("contact_phone") or "",
        contact_email=values.get("contact_email") or "",
    )
    _set_ports(firm, values.get("ports") or [])
    session.add(firm)
    session.flush()
    if actor is not None:
        audit.record(session, "firm.create", actor, firm, firm.id)
    return firm


def update_profile(session: Session, firm: Firm, values: dict, actor) -> Firm:
    if not (actor.role == "admin" or (actor.role == "publisher" and actor.firm_id == firm.id)):
        raise PermissionDenied(_l("You may only change your own firm."))
    changed = {}
    for key in ("name_zh", "name_en", "category", "contact_phone", "contact_email"):
        if key in values and getattr(firm, key) != values[key]:
            changed[key] = [getattr(firm, key), values[key]]
            setattr(firm, key, values[key])
    if "ports" in values and sorted(values["ports"]) != firm.port_codes:
        changed["ports"] = [firm.port_codes, sorted(values["ports"])]
        _set_ports(firm, values["ports"])
    session.flush()
    if changed:
        audit.record(session, "firm.update", actor, firm, firm.id, changes=changed)
    return firm


def set_status(session: Session, firm: Firm, status: str, reason: str, actor) -> Firm:
    if actor is None or actor.role != "admin":
        raise PermissionDenied(_l("Only an administrator can suspend or reinstate a firm."))
    if status not in codes.FIRM_STATUSES:
        raise InvalidInput(_l("Unknown firm status."))
    firm.status, firm.status_reason = status, reason.strip() if status == "suspended" else ""
    session.flush()
    audit.record(session, "firm.suspend" if status == "suspended" else "firm.reinstate", actor, firm,
                 firm.id, reason=reason)
    return firm
