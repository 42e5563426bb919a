"""A regulator's review of flags, and a firm's answer to a confirmed one.

The anomaly checks (checks.py) raise, carry forward and resolve flags; people decide on
them only here. Every decision is an audit event, written in the same transaction.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from ..labels import audit_label
from ..models import Flag
from ..models.types import utcnow
from . import audit
from .errors import InvalidInput, PermissionDenied, ServiceError

DECISIONS = {"confirm": "confirmed", "dismiss": "dismissed"}
MAX_TEXT = 4000


def _is_regulator(actor) -> bool:
    return actor is not None and getattr(actor, "role", None) in ("regulator", "admin")


def decide_flag(session: Session, flag: Flag, decision: str, note: str, actor) -> Flag:
    """Confirm or dismiss an open flag, with the reviewer's note (required: a decision
    nobody can explain later is no audit trail)."""
    if not _is_regulator(actor):
        raise PermissionDenied(_l("Only a regulator can review flags."))
    if decision not in DECISIONS:
        raise InvalidInput(_l("Choose confirm or dismiss."))
    note = (note or "").strip()
    if not note:
        raise InvalidInput(_l("Write a note that explains the decision."))
    if len(note) > MAX_TEXT:
        raise InvalidInput(_l("The note is too long."))
    # Resolved flags (the condition no longer holds) and decided ones are history: a new
    # version that breaks the rule again gets a new open flag from the checks.
    if flag.status != "open":
        raise ServiceError(_l("Only an open flag can be reviewed; this one is %(status)s.",
                              status=audit_label("flag_status", flag.status)))
    flag.status = DECISIONS[decision]
    flag.reviewer_id = actor.id
    flag.note = note
    flag.decided_at = utcnow()
    audit.record(session, f"flag.{decision}", actor, flag, flag.firm_id, rule=flag.rule, item_id=flag.item_id,
                 version_id=flag.version_id, note=note)
    session.flush()
    return flag


def answer_flag(session: Session, flag: Flag, answer: str, actor) -> Flag:
    """The firm's answer to a confirmed flag on its own items (it may revise it)."""
    if actor is None or getattr(actor, "role", None) != "publisher" or actor.firm_id != flag.firm_id:
        raise PermissionDenied(_l("Only the firm concerned can answer this flag."))
    if flag.status != "confirmed":
        raise ServiceError(_l("Only a confirmed flag can be answered."))
    answer = (answer or "").strip()
    if not answer:
        raise InvalidInput(_l("Write your answer."))
    if len(answer) > MAX_TEXT:
        raise InvalidInput(_l("The answer is too long."))
    revised = bool(flag.firm_answer)
    flag.firm_answer = answer
    flag.firm_answered_at = utcnow()
    audit.record(session, "flag.answer", actor, flag, flag.firm_id, rule=flag.rule, revised=revised)
    session.flush()
    return flag
