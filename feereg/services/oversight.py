"""Read-side queries of the regulator's workspace: flag filters, dashboard counts, the
weekly trend, the firms with the most flags, complaint figures, the peers of a flag."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from .. import codes
from ..models import Complaint, FeeItemVersion, Firm, FirmPort, Flag
from . import rates
from .registry import today
from .anomaly_rules import RULES, LOCAL_OFFSET

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
TREND_WEEKS = 12


@dataclass
class FlagFilter:
    """What a regulator narrowed the flags to; empty fields do not narrow."""
    status: str = "open"
    rule: str = ""
    severity: str = ""
    category: str = ""
    port: str = ""
    #: A firm's name or credit code (contains).
    q: str = ""
    firm_id: int | None = None
    #: Raised on or after / on or before (Shenzhen dates).
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_args(cls, args, default_status: str = "open") -> "FlagFilter":
        """From request arguments, dropping what is not a known value (a bad filter shows
        everything rather than an error page)."""
        def pick(name, allowed):
            value = (args.get(name) or "").strip()
            return value if value in allowed else ""

        status = args.get("status", default_status)
        return cls(
            status=status if status in ("open", "confirmed", "dismissed", "resolved") else "",
            rule=pick("rule", RULES), severity=pick("severity", SEVERITY_ORDER),
            category=pick("category", codes.CATEGORIES), port=pick("port", codes.PORTS),
            q=(args.get("q") or "").strip()[:100],
            date_from=_date(args.get("from")), date_to=_date(args.get("to")),
        )

    def as_args(self) -> dict:
        args = {"status": self.status, "rule": self.rule, "severity": self.severity, "category": self.category,
                "port": self.port, "q": self.q, "from": self.date_from.isoformat() if self.date_from else "",
                "to": self.date_to.isoformat() if self.date_to else ""}
        return {k: v for k, v in args.items() if v}


def _date(raw) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _utc_start(day: date) -> datetime:
    """The UTC moment a Shenzhen day starts (created_at is naive UTC)."""
    return datetime.combine(day, datetime.min.time()) - LOCAL_OFFSET


def narrow(stmt, f: FlagFilter, with_status: bool = True):
    """Apply the filter to a statement that selects from Flag joined to Firm."""
    if with_status and f.status:
        stmt = stmt.where(Flag.status == f.status)
    if f.rule:
        stmt = stmt.where(Flag.rule == f.rule)
    if f.severity:
        stmt = stmt.where(Flag.severity == f.severity)
    if f.category:
        stmt = stmt.where(Firm.category == f.category)
    if f.port:
        # An alias: the by-port count joins FirmPort itself, which must not correlate here.
        served = aliased(FirmPort)
        stmt = stmt.where(exists().where(served.firm_id == Flag.firm_id, served.port == f.port))
    if f.firm_id is not None:
        stmt = stmt.where(Flag.firm_id == f.firm_id)
    if f.q:
        like = f"%{f.q}%"
        stmt = stmt.where(or_(Firm.name_zh.ilike(like), Firm.name_en.ilike(like), Firm.credit_code.ilike(like)))
    if f.date_from:
        stmt = stmt.where(Flag.created_at >= _utc_start(f.date_from))
    if f.date_to:
        stmt = stmt.where(Flag.created_at < _utc_start(f.date_to + timedelta(days=1)))
    return stmt


def flags_query(f: FlagFilter):
    """The flags a filter selects, most severe and newest first."""
    severity = _severity_rank()
    stmt = select(Flag).join(Firm, Firm.id == Flag.firm_id).options(selectinload(Flag.firm))
    return narrow(stmt, f).order_by(severity, Flag.created_at.desc(), Flag.id.desc())


def _severity_rank():
    return case({"high": 0, "medium": 1}, value=Flag.severity, else_=2)


def _grouped(session: Session, column, f: FlagFilter) -> list[tuple[str, int]]:
    stmt = select(column, func.count(Flag.id)).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
    stmt = narrow(stmt, f).group_by(column).order_by(func.count(Flag.id).desc(), column)
    return [(key or "", n) for key, n in session.execute(stmt)]


@dataclass
class Dashboard:
    total: int
    by_rule: list[tuple[str, int]]
    by_severity: list[tuple[str, int]]
    by_category: list[tuple[str, int]]
    by_port: list[tuple[str, int]]
    top_firms: list[tuple[Firm, int]]
    trend: list[tuple[date, int]]
    complaints: "ComplaintFigures"
    by_status: list[tuple[str, int]] = field(default_factory=list)


def dashboard(session: Session, f: FlagFilter, today: date) -> Dashboard:
    base = select(func.count(Flag.id)).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
    total = session.scalar(narrow(base, f)) or 0
    by_severity = sorted(_grouped(session, Flag.severity, f), key=lambda r: SEVERITY_ORDER.get(r[0], 9))
    # A firm serving several ports counts at each of them: the port view answers "what is
    # flagged at Yantian", not a partition of the total.
    port_stmt = (select(FirmPort.port, func.count(Flag.id)).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
                 .join(FirmPort, FirmPort.firm_id == Flag.firm_id))
    by_port = [(p, n) for p, n in session.execute(
        narrow(port_stmt, f).group_by(FirmPort.port).order_by(func.count(Flag.id).desc(), FirmPort.port))]
    status_stmt = select(Flag.status, func.count(Flag.id)).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
    by_status = [(s, n) for s, n in session.execute(narrow(status_stmt, f, with_status=False).group_by(Flag.status))]
    return Dashboard(total=total, by_rule=_grouped(session, Flag.rule, f), by_severity=by_severity,
                     by_category=_grouped(session, Firm.category, f), by_port=by_port,
                     top_firms=top_firms(session, f), trend=weekly_trend(session, f, today),
                     complaints=complaint_figures(session), by_status=by_status)


def top_firms(session: Session, f: FlagFilter, limit: int = 10) -> list[tuple[Firm, int]]:
    stmt = select(Firm, func.count(Flag.id)).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
    stmt = narrow(stmt, f).group_by(Firm.id).order_by(func.count(Flag.id).desc(), Firm.id).limit(limit)
    return [(firm, n) for firm, n in session.execute(stmt)]


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_trend(session: Session, f: FlagFilter, today: date, weeks: int = TREND_WEEKS) -> list[tuple[date, int]]:
    """Flags raised per week (Monday to Sunday, Shenzhen time), the last `weeks` weeks,
    whatever their status now: the workload coming in, not what is left of it."""
    first = week_start(today) - timedelta(weeks=weeks - 1)
    stmt = select(Flag.created_at).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
    stmt = narrow(stmt, f, with_status=False).where(Flag.created_at >= _utc_start(first))
    counts = {first + timedelta(weeks=n): 0 for n in range(weeks)}
    for (created,) in session.execute(stmt):
        week = week_start((created + LOCAL_OFFSET).date())
        if week in counts:
            counts[week] += 1
    return sorted(counts.items())


@dataclass
class ComplaintFigures:
    open: int
    by_status: dict[str, int]
    closed: int
    #: Median days from receipt to closure, of the complaints closed (None: none closed yet).
    median_days_to_close: float | None


def complaint_figures(session: Session) -> ComplaintFigures:
    by_status = dict(session.execute(select(Complaint.status, func.count()).group_by(Complaint.status)).all())
    durations = [(closed - received).total_seconds() / 86400 for received, closed in session.execute(
        select(Complaint.received_at, Complaint.closed_at).where(Complaint.closed_at.is_not(None)))]
    median = round(statistics.median(durations), 1) if durations else None
    return ComplaintFigures(open=sum(n for s, n in by_status.items() if s != "closed"), by_status=by_status,
                            closed=by_status.get("closed", 0), median_days_to_close=median)


# --- the flag page -------------------------------------------------------------------------

@dataclass
class Peer:
    version: FeeItemVersion
    amount_cny: Decimal | None
    is_flagged: bool


def peers_of(session: Session, flag: Flag, limit: int = 100) -> list[Peer]:
    """The items a PEER_OUTLIER flag was compared with: the latest published version of
    every item of the same fee type, unit, container size and cargo scope at the port its
    evidence names (as the checks group them), cheapest first, the flagged one marked."""
    ev = flag.evidence or {}
    if flag.rule != "PEER_OUTLIER" or not ev.get("fee_type"):
        return []
    V = FeeItemVersion
    later = aliased(FeeItemVersion)
    newer = exists().where(later.item_id == V.item_id, later.seq > V.seq)
    stmt = (select(V).options(selectinload(V.firm).selectinload(Firm.ports))
            .where(V.fee_type_code == ev["fee_type"], V.unit == ev.get("unit", ""),
                   V.container_size == ev.get("container_size", ""), V.cargo_scope == ev.get("cargo_scope", ""),
                   V.kind == "publish", ~newer))
    port = ev.get("port", "")
    table = rates.rates_on(today())
    found = []
    for version in session.scalars(stmt):
        ports = codes.split_list(version.ports) or version.firm.port_codes
        if port and port not in ports:
            continue
        found.append(Peer(version, table.to_cny(version.amount, version.currency), version.item_id == flag.item_id))
    found.sort(key=lambda p: (p.amount_cny is None, p.amount_cny or 0, p.version.id))
    if len(found) > limit:
        # Keep the flagged item in view whatever its rank.
        flagged = [p for p in found if p.is_flagged]
        found = found[:limit] + [p for p in flagged if p not in found[:limit]]
    return found


def open_flag_counts(session: Session, firm_ids: list[int]) -> dict[int, int]:
    if not firm_ids:
        return {}
    rows = session.execute(select(Flag.firm_id, func.count()).where(Flag.firm_id.in_(firm_ids), Flag.status == "open")
                           .group_by(Flag.firm_id))
    return dict(rows.all())

