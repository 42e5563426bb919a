"""Firms: registration (with the first publisher account), profile, suspension."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select
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


def create_firms(session: Session, rows: list[dict], actor) -> list[int]:
    """Register many firms in two statements (bulk loads); the same checks as create_firm.
    Returns the new ids in the order of `rows`."""
    if actor is None or actor.role != "admin":
        raise PermissionDenied(_l("Only an operator can load firms in bulk."))
    firm_rows, ports = [], []
    for values in rows:
        if values["category"] not in codes.CATEGORIES:
            raise InvalidInput(_l("Unknown firm category."))
        unknown = [p for p in values.get("ports") or [] if p not in codes.PORTS]
        if unknown:
            raise InvalidInput(_l("Unknown port %(port)s.", port=unknown[0]))
        firm_rows.append({
            "credit_code": credit_code.validate(values["credit_code"]),
            "name_zh": values["name_zh"].strip(), "name_en": (values.get("name_en") or "").strip(),
            "category": values["category"], "contact_phone": values.get("contact_phone") or "",
            "contact_email": values.get("contact_email") or "", "status": "active", "status_reason": "",
            "chain_seq": 0, "chain_head": "",
        })
        ports.append(sorted(set(values.get("ports") or [])))
    if not firm_rows:
        return []
    ids = session.scalars(insert(Firm).returning(Firm.id, sort_by_parameter_order=True), firm_rows).all()
    port_rows = [{"firm_id": firm_id, "port": port} for firm_id, wanted in zip(ids, ports) for port in wanted]
    if port_rows:
        session.execute(insert(FirmPort), port_rows)
    audit.record(session, "firms.load", actor, None, None, count=len(ids))
    return list(ids)


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
