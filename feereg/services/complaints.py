"""Shippers' complaints, closed in a loop: the only code that moves a complaint.

    received ──forward──▶ forwarded ──answer (the firm)──▶ answered
        │                     │                               │
        └──────────────── close (the regulator, with a conclusion) ──▶ closed

Each step stamps its time (forwarded_at, answered_at, closed_at) so time to closure can
be reported, and is an audit event. A step from the wrong state is refused
(IllegalTransition), never silently applied. Filing a complaint about a charge the
firm's published schedule does not contain, or prices lower, raises UNDISCLOSED through
the checks service in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .. import codes, credit_code
from ..labels import audit_label
from ..models import COMPLAINT_STATUSES, Complaint, FeeItem, Firm, Flag
from ..models.types import utcnow
from . import audit, checks
from .catalog import CatalogIndex
from .errors import InvalidInput, PermissionDenied, ServiceError
from .registry import today

MAX_AMOUNT = Decimal("99999999.99")


class IllegalTransition(ServiceError):
    """A complaint step asked for from a state it cannot follow."""


@dataclass(frozen=True)
class Step:
    #: The states the step may start from, and the one it leads to.
    sources: frozenset
    target: str
    #: Who takes it: "regulator" (or admin) or "firm" (the firm's publisher).
    by: str


STEPS = {
    "forward": Step(frozenset({"received"}), "forwarded", "regulator"),
    "answer": Step(frozenset({"forwarded"}), "answered", "firm"),
    # A regulator may close at any stage: an unfounded complaint need not go to the firm.
    "close": Step(frozenset({"received", "forwarded", "answered"}), "closed", "regulator"),
}


def allowed_steps(complaint: Complaint, actor) -> list[str]:
    """The steps this person may take on this complaint now (what the page offers)."""
    return [name for name, step in STEPS.items()
            if complaint.status in step.sources and _may(step, complaint, actor)]


def _may(step: Step, complaint: Complaint, actor) -> bool:
    role = getattr(actor, "role", None)
    if step.by == "regulator":
        return role in ("regulator", "admin")
    return role == "publisher" and actor.firm_id == complaint.firm_id


def _move(session: Session, complaint: Complaint, name: str, actor, **detail) -> None:
    step = STEPS[name]
    if not _may(step, complaint, actor):
        raise PermissionDenied(_l("You may not take this step on this complaint."))
    if complaint.status not in step.sources:
        raise IllegalTransition(_l("A complaint that is %(status)s cannot take the step “%(step)s”.",
                                   status=audit_label("complaint_status", complaint.status),
                                   step=audit_label("complaint_step", name)))
    before = complaint.status
    complaint.status = step.target
    setattr(complaint, f"{step.target}_at", utcnow())
    audit.record(session, f"complaint.{name}", actor, complaint, complaint.firm_id, before=before,
                 after=step.target, **detail)
    session.flush()


def _text(value, name, limit, required=True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InvalidInput(_l("%(field)s is required.", field=name))
    if len(text) > limit:
        raise InvalidInput(_l("%(field)s is too long.", field=name))
    return text


# --- filing ----------------------------------------------------------------------------------

def find_firm(session: Session, text: str) -> Firm | None:
    """A firm by its credit code, or by its exact Chinese or English name."""
    text = (text or "").strip()
    if not text:
        return None
    firm = session.scalar(select(Firm).where(Firm.credit_code == credit_code.normalise(text)))
    if firm is not None:
        return firm
    found = list(session.scalars(select(Firm).where(or_(Firm.name_zh == text, func.lower(Firm.name_en) == text.lower()))
                                 .limit(2)))
    return found[0] if len(found) == 1 else None


def file_complaint(session: Session, values: dict, actor=None) -> tuple[Complaint, Flag | None]:
    """File a complaint (anyone may: `actor` is None for an anonymous shipper). Returns the
    complaint and the UNDISCLOSED flag it raised, if any."""
    firm = values.get("firm")
    if not isinstance(firm, Firm):
        firm = find_firm(session, values.get("firm_text", ""))
    if firm is None:
        raise InvalidInput(_l("No registered firm has that credit code or name."))
    fee_name = _text(values.get("fee_name"), _l("What was charged"), 200)
    try:
        amount = Decimal(str(values.get("amount"))).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise InvalidInput(_l("The amount must be a number.")) from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT:
        raise InvalidInput(_l("The amount must be above zero."))
    currency = (values.get("currency") or "CNY").strip().upper()
    if currency not in codes.CURRENCIES:
        raise InvalidInput(_l("Unknown currency."))
    charged_on = values.get("charged_on")
    if not isinstance(charged_on, date):
        raise InvalidInput(_l("Give the date of the charge."))
    if charged_on > today():
        raise InvalidInput(_l("The date of the charge cannot be in the future."))
    description = _text(values.get("description"), _l("Description"), 4000)
    contact = _text(values.get("contact"), _l("Contact"), 200, required=False)

    item = None
    if values.get("item_id"):
        item = session.get(FeeItem, int(values["item_id"]))
        # An item of another firm, or never published, is refused: the complaint is about this firm.
        if item is None or item.firm_id != firm.id or item.status == "draft":
            raise InvalidInput(_l("That fee item is not one of this firm's published items."))
    fee_type_code = item.fee_type_code if item is not None else ""
    if not fee_type_code:
        match = CatalogIndex.load(session).match(fee_name)
        fee_type_code = match.code if match else ""

    complaint = Complaint(firm_id=firm.id, firm=firm, item_id=item.id if item else None, fee_name=fee_name,
                          fee_type_code=fee_type_code, amount=amount, currency=currency, charged_on=charged_on,
                          description=description, contact=contact, status="received", firm_answer="",
                          regulator_conclusion="", received_at=utcnow())
    session.add(complaint)
    session.flush()
    audit.record(session, "complaint.file", actor, complaint, firm.id, fee_name=fee_name,
                 fee_type=fee_type_code, amount=amount, currency=currency)
    flag = checks.raise_undisclosed(session, complaint, actor)
    session.flush()
    return complaint, flag


# --- the loop --------------------------------------------------------------------------------

def forward(session: Session, complaint: Complaint, actor, note: str = "") -> Complaint:
    """The regulator passes the complaint to the firm, which can then see and answer it."""
    _move(session, complaint, "forward", actor, note=_text(note, _l("Note"), 4000, required=False))
    return complaint


def answer(session: Session, complaint: Complaint, actor, text: str) -> Complaint:
    """The firm's answer to a complaint forwarded to it."""
    text = _text(text, _l("Answer"), 4000)
    _move(session, complaint, "answer", actor)
    complaint.firm_answer = text
    return complaint


def close(session: Session, complaint: Complaint, actor, conclusion: str) -> Complaint:
    """The regulator's conclusion closes the complaint."""
    conclusion = _text(conclusion, _l("Conclusion"), 4000)
    _move(session, complaint, "close", actor)
    complaint.regulator_conclusion = conclusion
    return complaint


# --- reads ---------------------------------------------------------------------------------

def for_firm(session: Session, firm_id: int):
    """What a firm sees: complaints about it that the regulator forwarded (a received one is
    still being triaged, and the complainant's contact is never part of it)."""
    return (select(Complaint).where(Complaint.firm_id == firm_id, Complaint.forwarded_at.is_not(None))
            .order_by(Complaint.received_at.desc(), Complaint.id.desc()))


def listing(status: str = "", firm_id: int | None = None):
    stmt = select(Complaint).order_by(Complaint.received_at.desc(), Complaint.id.desc())
    if status == "open":
        stmt = stmt.where(Complaint.status != "closed")
    elif status in COMPLAINT_STATUSES:
        stmt = stmt.where(Complaint.status == status)
    if firm_id is not None:
        stmt = stmt.where(Complaint.firm_id == firm_id)
    return stmt


def public_counts(session: Session, firm_id: int) -> dict[str, int]:
    """For the firm's public page: complaints received, answered by the firm (whatever
    happened after), closed by the regulator."""
    total, answered, closed = session.execute(select(
        func.count(), func.count(Complaint.answered_at), func.count(Complaint.closed_at))
        .where(Complaint.firm_id == firm_id)).one()
    return {"total": total, "answered": answered, "closed": closed}


def flags_of(session: Session, complaint: Complaint) -> list[Flag]:
    return list(session.scalars(select(Flag).where(Flag.complaint_id == complaint.id).order_by(Flag.id)))
