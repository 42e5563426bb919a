"""Firm compliance: the public disclosure score, and the regulator's cases against a firm.

The score (0-100) is the sum of three parts, each with what lowered it:

* completeness (40): the share of the firm's schedule in force today that passes the
  INCOMPLETE rule (service content, unit, legal basis of government-priced fees, no "详见附件");
* currency (30): the share of its items touched by a policy notice (same fee type and scope,
  in force) that it re-published on or after the notice took effect;
* confirmed flags (30): 10 points per high, 5 per medium, 2 per low flag a regulator confirmed
  in the last year (a firm that fixes an item earns the points back a year later, which is
  what a reader of the score expects of "recent conduct").

A case moves warning → rectification (with a deadline) → closed; a warning can be closed
directly. One case per firm is open at a time. Each step is a ComplianceStep the firm sees
and an audit event.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from types import SimpleNamespace

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..labels import audit_label
from ..models import POLICY_KINDS, ComplianceCase, ComplianceStep, Firm, Flag
from ..models.types import utcnow
from . import anomaly_rules, audit, checks, history
from .anomaly_rules import LOCAL_OFFSET, Entry
from .errors import InvalidInput, PermissionDenied, ServiceError
from .registry import today

COMPLETENESS_POINTS = 40
CURRENCY_POINTS = 30
FLAG_POINTS = 30
FLAG_PENALTY = {"high": 10, "medium": 5, "low": 2}
FLAG_WINDOW_DAYS = 365


@dataclass
class Deduction:
    part: str
    points: int
    #: Why, in the reader's language (lazy: rendered by the page).
    reason: object


@dataclass
class Score:
    points: int
    items: int
    deductions: list[Deduction] = field(default_factory=list)

    @property
    def grade(self) -> str:
        return "good" if self.points >= 85 else "fair" if self.points >= 60 else "poor"


def score(session: Session, firm: Firm, on: date | None = None, schedule: list | None = None) -> Score:
    """schedule: the firm's versions in force on `on`, when the caller has read them already."""
    on = on or today()
    if schedule is None:
        schedule = history.schedule_on(session, firm, on)
    ctx = checks.context(session, on, with_catalog=False)  # the two parts below read no fee type
    result = Score(100, len(schedule))
    if not schedule:
        result.deductions.append(Deduction("completeness", COMPLETENESS_POINTS + CURRENCY_POINTS,
                                           _l("No fee schedule is published.")))
    else:
        ports = tuple(firm.port_codes)
        incomplete = [v for v in schedule if anomaly_rules.incomplete(Entry.of(v, firm.category, ports), ctx)]
        lost = round(COMPLETENESS_POINTS * len(incomplete) / len(schedule))
        if lost:
            result.deductions.append(Deduction("completeness", lost, _l(
                "%(n)s of %(total)s published items lack service content, a unit or a legal basis, or are vague.",
                n=len(incomplete), total=len(schedule))))
        touched, stale = _currency(ctx.policy, schedule, ports, on)
        lost = round(CURRENCY_POINTS * stale / touched) if touched else 0
        if lost:
            result.deductions.append(Deduction("currency", lost, _l(
                "%(n)s of %(total)s items a policy notice applies to were not re-published since it took effect.",
                n=stale, total=touched)))
    since = utcnow() - timedelta(days=FLAG_WINDOW_DAYS)
    confirmed = dict(session.execute(
        select(Flag.severity, func.count()).where(Flag.firm_id == firm.id, Flag.status == "confirmed",
                                                  Flag.decided_at >= since).group_by(Flag.severity)).all())
    lost = min(FLAG_POINTS, sum(FLAG_PENALTY.get(sev, 2) * n for sev, n in confirmed.items()))
    if lost:
        result.deductions.append(Deduction("flags", lost, _l(
            "%(n)s irregularities confirmed by a regulator in the last year.", n=sum(confirmed.values()))))
    result.points = max(0, 100 - sum(d.points for d in result.deductions))
    return result


def _currency(policy: anomaly_rules.Policy, schedule, ports: tuple, on: date) -> tuple[int, int]:
    """(items a notice in force applies to, those not re-published since it took effect)."""
    grace_days = current_app.config.get("COMPLIANCE_GRACE_DAYS", 30)
    touched = stale = 0
    for version in schedule:
        scope = SimpleNamespace(fee_type_code=version.fee_type_code, unit=version.unit,
                                container_size=version.container_size,
                                port_list=tuple(version.ports.split(";")) if version.ports else ports)
        # The notice of each kind in force for this item's scope (the rules' own reading).
        applying = [n for kind in POLICY_KINDS if (n := policy.in_force((kind,), scope, on)) is not None]
        if not applying:
            continue
        touched += 1
        published_on = (version.published_at + LOCAL_OFFSET).date()
        took_effect = max(n.effective_from for n in applying)
        # A firm has a grace period to re-publish; a notice recorded today with a past
        # date must not mark down every firm at once.
        if published_on < took_effect and on > took_effect + timedelta(days=grace_days):
            stale += 1
    return touched, stale


# --- cases -----------------------------------------------------------------------------------

def _require_regulator(actor) -> None:
    if actor is None or getattr(actor, "role", None) not in ("regulator", "admin"):
        raise PermissionDenied(_l("Only a regulator can act on a compliance case."))


def _note(text: str, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise InvalidInput(_l("Write a note for the firm."))
    if len(text) > 4000:
        raise InvalidInput(_l("The note is too long."))
    return text


def open_case(session: Session, firm: Firm, reason: str, actor) -> ComplianceCase:
    """A warning to the firm: the first step of a case."""
    _require_regulator(actor)
    reason = _note(reason)
    if current_case(session, firm.id) is not None:
        raise ServiceError(_l("This firm already has an open compliance case."))
    case = ComplianceCase(firm_id=firm.id, status="warning", reason=reason, opened_by_id=actor.id,
                          opened_at=utcnow())
    session.add(case)
    case.steps.append(ComplianceStep(status="warning", note=reason, actor_id=actor.id, at=utcnow()))
    session.flush()
    audit.record(session, "compliance.warning", actor, case, firm.id, note=reason)
    return case


def order_rectification(session: Session, case: ComplianceCase, deadline: date | None, note: str,
                        actor) -> ComplianceCase:
    _require_regulator(actor)
    note = _note(note)
    if case.status != "warning":
        raise ServiceError(_l("Rectification follows a warning; this case is %(status)s.",
                              status=audit_label("case_status", case.status)))
    if deadline is None or deadline <= today():
        raise InvalidInput(_l("Give a rectification deadline after today."))
    case.status, case.deadline = "rectification", deadline
    case.steps.append(ComplianceStep(status="rectification", note=note, deadline=deadline, actor_id=actor.id,
                                     at=utcnow()))
    session.flush()
    audit.record(session, "compliance.rectification", actor, case, case.firm_id, deadline=deadline, note=note)
    return case


def close_case(session: Session, case: ComplianceCase, note: str, actor) -> ComplianceCase:
    _require_regulator(actor)
    note = _note(note)
    if case.status == "closed":
        raise ServiceError(_l("This case is already closed."))
    case.status, case.closed_at = "closed", utcnow()
    case.steps.append(ComplianceStep(status="closed", note=note, actor_id=actor.id, at=utcnow()))
    session.flush()
    audit.record(session, "compliance.close", actor, case, case.firm_id, note=note)
    return case


def current_case(session: Session, firm_id: int) -> ComplianceCase | None:
    return session.scalar(select(ComplianceCase).where(ComplianceCase.firm_id == firm_id,
                                                       ComplianceCase.status != "closed"))


def cases_of(session: Session, firm_id: int) -> list[ComplianceCase]:
    return list(session.scalars(select(ComplianceCase).options(selectinload(ComplianceCase.steps))
                                .where(ComplianceCase.firm_id == firm_id)
                                .order_by(ComplianceCase.opened_at.desc(), ComplianceCase.id.desc())))


def open_cases(session: Session) -> list[ComplianceCase]:
    """Firms under warning or rectification, the nearest deadline first."""
    return list(session.scalars(
        select(ComplianceCase).options(selectinload(ComplianceCase.firm))
        .where(ComplianceCase.status != "closed")
        .order_by(ComplianceCase.deadline.is_(None), ComplianceCase.deadline, ComplianceCase.opened_at)))
