"""Running the anomaly rules (anomaly_rules.py) and keeping their flags.

Three ways in, one way out:

* `on_published` — hooked to every publish and import (hooks.on_publish), inside the
  publishing transaction: the changed items, their firms' other items (DUPLICATE) and
  every peer group a changed item leaves or joins (PEER_OUTLIER: one member's change
  moves the median for all).
* `full_scan` — everything, in one streaming pass over the versions plus one grouped
  pass for peer statistics (`feereg scan`, and after a bulk load such as the demo).
* `record_policy_notice` — a new cap, official rate or abolition re-checks at once every
  live item of its fee type.

All of them hand their findings to `_reconcile`, which keeps flags idempotent: a finding
whose fingerprint (rule, subject, version) exists is not raised again; an open flag of the
same rule and subject follows the item to its new version; an open flag in the checked
scope that nothing found any more becomes `resolved` (never deleted). Raising, reopening
and resolving a flag are audit events.
"""
from __future__ import annotations

import logging
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from ..models import POLICY_KINDS, FeeItemVersion, FeeType, Firm, FirmPort, Flag, PolicyNotice
from ..models.types import utcnow
from . import anomaly_rules as rules
from . import audit, history, hooks
from .anomaly_rules import RULES, Charge, Context, Entry
from .errors import InvalidInput, PermissionDenied
from .registry import today

log = logging.getLogger(__name__)
V = FeeItemVersion
#: What the rules read of a version (plain columns: a full scan streams every version).
_COLUMNS = tuple(getattr(V, name) for name in rules.ENTRY_FIELDS)
#: Rules a policy notice can change the outcome of.
POLICY_RULES = ("ABOLISHED", "OVER_CAP", "MARKUP")
#: Rules a scan or publish judges (UNDISCLOSED comes from complaints and invoices only).
SCANNED_RULES = tuple(code for code in RULES if code != "UNDISCLOSED")
CHUNK = 900  # ids per IN (...): well under every database's bound-parameter limit


def register() -> None:
    """Hook the checks into the registry (called by create_app; registering twice is harmless)."""
    hooks.on_publish(on_published)
    hooks.after_bulk_load(scan_after_bulk_load)


@dataclass
class Finding:
    rule: str
    firm_id: int
    item_id: int | None
    version_id: int | None
    #: What was judged, without the version: "item:12", "items:12:15", "complaint:3".
    subject: str
    evidence: dict
    fee_type_code: str = ""
    complaint_id: int | None = None

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}|{self.subject}|v{self.version_id or 0}"


@dataclass
class Scope:
    """Which open flags a check was in a position to find again (the others it leaves alone)."""
    #: rule → item ids judged for it; None: every item.
    items: dict[str, set[int] | None]
    #: item id → the latest version the check judged. An event flag (NO_NOTICE, STEEP_RISE)
    #: on an older version is history, not something this check could find again; a flag on
    #: a version the check did not see (published while a long scan ran) is not its to resolve.
    latest: dict[int, int] = field(default_factory=dict)

    def covers(self, flag: Flag) -> bool:
        if flag.item_id is None or flag.rule not in self.items:
            return False
        ids = self.items[flag.rule]
        if ids is not None and flag.item_id not in ids:
            return False
        seen = self.latest.get(flag.item_id)
        if seen is None or flag.version_id is None:
            return False
        if flag.version_id == seen:
            return True
        # A state flag left on an older version (its item changed type, say, so the flag
        # could not follow) is the check's to resolve; an event flag there is history.
        return not RULES[flag.rule].event and flag.version_id < seen


@dataclass
class CheckReport:
    items: int = 0
    live: int = 0
    found: Counter = field(default_factory=Counter)
    raised: int = 0
    reopened: int = 0
    resolved: int = 0
    seconds: float = 0.0
    #: Where a full scan spent its time (seconds per phase), for the benchmark.
    phases: dict = field(default_factory=dict)


# --- reading what the rules need -----------------------------------------------------------

def context(session: Session, on: date | None = None) -> Context:
    catalog = {ft.code: ft for ft in session.scalars(select(FeeType))}
    notices = session.scalars(select(PolicyNotice)).all()
    return Context.build(current_app.config, on or today(), catalog, notices)


def _chunks(values: Iterable, size: int = CHUNK):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _firms(session: Session, firm_ids: Iterable[int] | None = None) -> dict[int, tuple[str, tuple]]:
    """firm id → (category, ports served)."""
    categories: dict[int, str] = {}
    ports: dict[int, list[str]] = {}
    groups = [None] if firm_ids is None else list(_chunks(set(firm_ids)))
    for chunk in groups:
        q_firm = select(Firm.id, Firm.category)
        q_port = select(FirmPort.firm_id, FirmPort.port).order_by(FirmPort.firm_id, FirmPort.port)
        if chunk is not None:
            q_firm, q_port = q_firm.where(Firm.id.in_(chunk)), q_port.where(FirmPort.firm_id.in_(chunk))
        categories.update(((fid, cat) for fid, cat in session.execute(q_firm)))
        for firm_id, port in session.execute(q_port):
            ports.setdefault(firm_id, []).append(port)
    return {fid: (cat, tuple(ports.get(fid, ()))) for fid, cat in categories.items()}


def _walk(session: Session, *conditions):
    """(latest, previous) version rows of every item whose versions meet `conditions`
    (conditions on the item or firm, so all of an item's versions are seen), streamed in
    item order: the database sorts, Python keeps two rows at a time."""
    stmt = select(*_COLUMNS).where(*conditions).order_by(V.item_id, V.seq)
    # Core rows through the session's connection, streamed: no ORM row processing.
    result = session.connection().execute(stmt.execution_options(stream_results=True, yield_per=10_000))
    current, latest, previous = None, None, None
    for row in result:
        if row[1] != current:
            if current is not None:
                yield latest, previous
            current, latest, previous = row[1], row, None
        else:
            previous, latest = latest, row
    if current is not None:
        yield latest, previous


def _walk_items(session: Session, item_ids: Iterable[int]):
    for chunk in _chunks(sorted(set(item_ids))):
        yield from _walk(session, V.item_id.in_(chunk))


def _peer_members(session: Session, key: tuple) -> list:
    """The latest version of every item in one peer family (fee type, unit, size, scope),
    live ones only: one query per family, each candidate probed for a later version."""
    fee_type, unit, size, scope = key
    later = aliased(FeeItemVersion)
    newer = exists().where(later.item_id == V.item_id, later.seq > V.seq)
    stmt = select(*_COLUMNS).where(V.fee_type_code == fee_type, V.unit == unit, V.container_size == size,
                                   V.cargo_scope == scope, V.kind == "publish", ~newer)
    return list(session.connection().execute(stmt))


# --- running the rules ----------------------------------------------------------------------

def _item_findings(entry: Entry, ctx: Context, only: Iterable[str] | None = None) -> list[Finding]:
    found = []
    for rule, check in ctx.applicable(entry):
        if only is not None and rule.code not in only:
            continue
        evidence = check(entry, ctx)
        if evidence is not None:
            found.append(Finding(rule.code, entry.firm_id, entry.item_id, entry.version_id,
                                 f"item:{entry.item_id}", evidence, entry.fee_type_code))
    return found


def _duplicate_findings(groups: Iterable[list[Entry]], ctx: Context) -> list[Finding]:
    """Within each group of one firm's items of the same type, unit and scope, each later
    item is judged against the earliest one it overlaps in ports."""
    found = []
    for group in groups:
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda e: e.item_id)
        for index, entry in enumerate(group[1:], start=1):
            for other in group[:index]:
                evidence = rules.duplicate(entry, other, ctx)
                if evidence is not None:
                    found.append(Finding("DUPLICATE", entry.firm_id, entry.item_id, entry.version_id,
                                         f"items:{other.item_id}:{entry.item_id}", evidence, entry.fee_type_code))
                    break
    return found


def _peer_findings(members: Iterable[Entry], ctx: Context) -> list[Finding]:
    """One grouped pass: amounts per (peer family, port); statistics per group with enough
    peers; only members at or above the group's outlier multiple are then judged in full
    (against every group of their ports) — most items sit near their medians."""
    groups: dict[tuple, tuple[list[float], list[Entry]]] = {}
    for entry in members:
        amount = float(entry.amount) if entry.currency == "CNY" else _converted(entry, ctx)
        if amount is None:  # no exchange rate configured: neither judged nor counted
            continue
        family = (entry.fee_type_code, entry.unit, entry.container_size, entry.cargo_scope)
        for port in entry.port_list:
            group = groups.get(family + (port,))
            if group is None:
                group = groups[family + (port,)] = ([], [])
            group[0].append(amount)
            group[1].append(entry)
    stats: dict[tuple, rules.PeerStats] = {}
    candidates: dict[int, tuple[Entry, float]] = {}
    for key, (amounts, entries) in groups.items():
        if len(amounts) <= ctx.peer_min_count:
            continue
        median = statistics.median(amounts)
        limit = ctx.peer_ratio * median
        above = [(a, e) for a, e in zip(amounts, entries) if a >= limit]
        if not above:
            continue
        stats[key] = rules.peer_stats(amounts)  # the MAD only where someone may be flagged
        for amount, entry in above:
            candidates[entry.item_id] = (entry, amount)
    found = []
    for entry, amount in candidates.values():
        family = entry.peer_key
        judged = [(port, stats[family + (port,)]) for port in entry.port_list if family + (port,) in stats]
        evidence = rules.peer_outlier(entry, amount, judged, ctx)
        if evidence is not None:
            found.append(Finding("PEER_OUTLIER", entry.firm_id, entry.item_id, entry.version_id,
                                 f"item:{entry.item_id}", evidence, entry.fee_type_code))
    return found


def _converted(entry: Entry, ctx: Context) -> float | None:
    converted = ctx.cny(entry.amount, entry.currency)
    return None if converted is None else float(converted)


# --- the full scan --------------------------------------------------------------------------

def full_scan(session: Session, actor=None, progress: Callable[[int], None] | None = None,
              on: date | None = None) -> CheckReport:
    """Judge every live item by every rule; the caller commits."""
    started = time.perf_counter()
    report = CheckReport()
    ctx = context(session, on)
    firms = _firms(session)
    findings: list[Finding] = []
    live: list[Entry] = []
    duplicates: dict[tuple, list[Entry]] = {}
    latest_versions: dict[int, int] = {}
    pending = 0
    for latest, previous in _walk(session):
        report.items += 1
        latest_versions[latest[1]] = latest[0]  # rows by position on this hot path: see ENTRY_FIELDS
        pending += 1
        if progress and pending == 10_000:
            progress(pending)
            pending = 0
        if latest[4] != "publish":
            continue
        category, ports = firms.get(latest[2], ("", ()))
        entry = Entry(latest, previous, category, ports)
        findings.extend(_item_findings(entry, ctx))
        # Peers and duplicates need only the numbers and scope: drop the long texts.
        entry.service_content = entry.legal_basis = None
        live.append(entry)
        duplicates.setdefault(entry.duplicate_key, []).append(entry)
    if progress and pending:
        progress(pending)
    report.live = len(live)
    mark = _phase(report, "read and item rules", started)
    findings.extend(_duplicate_findings((g for g in duplicates.values() if len(g) > 1), ctx))
    duplicates.clear()
    mark = _phase(report, "duplicates", mark)
    findings.extend(_peer_findings(live, ctx))
    live.clear()
    mark = _phase(report, "peer statistics", mark)
    scope = Scope({code: None for code in SCANNED_RULES}, latest_versions)
    candidates = _open_flags(session) + _flags_by_fingerprint(session, findings)
    _reconcile(session, findings, scope, candidates, actor, report)
    _phase(report, "flags", mark)
    report.seconds = time.perf_counter() - started
    audit.record(session, "checks.scan", actor, None, None, items=report.items, live=report.live,
                 found=dict(report.found), raised=report.raised, reopened=report.reopened,
                 resolved=report.resolved, seconds=round(report.seconds, 2))
    session.flush()
    return report


def _phase(report: CheckReport, name: str, since: float) -> float:
    now = time.perf_counter()
    report.phases[name] = round(now - since, 2)
    return now


def scan_after_bulk_load() -> None:
    """After a bulk load commits (the demo): a full scan in a session of its own, because
    the loading session is between transactions when after-commit handlers run."""
    if not has_app_context():
        log.warning("anomaly checks not run after a bulk load (no application context); run `feereg scan`")
        return
    from ..extensions import db

    with Session(db.engine) as session:
        full_scan(session)
        session.commit()


# --- checks on what changed -----------------------------------------------------------------

def on_published(session: Session, versions: list) -> None:
    """The publish hook: judge the changed items and the peers they affect, in the
    publishing transaction (a failure here fails the publish: flags never drift)."""
    check_items(session, {v.item_id for v in versions})


def check_items(session: Session, item_ids: Iterable[int], actor=None, on: date | None = None) -> CheckReport:
    report = CheckReport()
    item_ids = set(item_ids)
    if not item_ids:
        return report
    started = time.perf_counter()
    ctx = context(session, on)
    walked = list(_walk_items(session, item_ids))
    firm_ids = {latest.firm_id for latest, _ in walked}
    # A changed item leaves the peer family of its previous version and joins its new one.
    families = {(row.fee_type_code, row.unit, row.container_size, row.cargo_scope)
                for pair in walked for row in pair if row is not None}

    firm_items: list[tuple] = list(_walk(session, V.firm_id.in_(sorted(firm_ids)))) if firm_ids else []
    members = [row for key in sorted(families) for row in _peer_members(session, key)]
    # Peers need their firm only to know where an item naming no port applies.
    firms = _firms(session, firm_ids | {row.firm_id for row in members if not row.ports})

    def entry(latest, previous=None) -> Entry:
        category, ports = firms.get(latest.firm_id, ("", ()))
        return Entry(latest, previous, category, ports)

    findings: list[Finding] = []
    latest_versions = {latest.item_id: latest.id for latest, _ in walked}
    report.items = len(walked)
    for latest, previous in walked:
        if latest.kind == "publish":
            report.live += 1
            findings.extend(_item_findings(entry(latest, previous), ctx))
    duplicates: dict[tuple, list[Entry]] = {}
    for latest, _ in firm_items:
        if latest.kind == "publish":
            e = entry(latest)
            duplicates.setdefault(e.duplicate_key, []).append(e)
    findings.extend(_duplicate_findings(duplicates.values(), ctx))
    findings.extend(_peer_findings([entry(row) for row in members], ctx))

    firm_item_ids = {latest.item_id for latest, _ in firm_items}
    latest_versions.update({latest.item_id: latest.id for latest, _ in firm_items})
    latest_versions.update({row.item_id: row.id for row in members})
    scope = Scope({code: set(item_ids) for code in SCANNED_RULES}, latest_versions)
    scope.items["DUPLICATE"] = firm_item_ids | item_ids
    scope.items["PEER_OUTLIER"] = {row.item_id for row in members} | item_ids
    candidates = _open_flags(session, item_ids=item_ids | firm_item_ids)
    candidates += _open_flags(session, rule="PEER_OUTLIER", fee_types={key[0] for key in families})
    candidates += _flags_by_fingerprint(session, findings)
    _reconcile(session, findings, scope, candidates, actor, report)
    report.seconds = time.perf_counter() - started
    return report


# --- policy notices -------------------------------------------------------------------------

def record_policy_notice(session: Session, values: dict, actor) -> tuple[PolicyNotice, CheckReport]:
    """Record a dated policy change and re-check, at once, every live item of its fee type
    (the notice's scope narrows what it applies to when judged)."""
    if actor is None or actor.role not in ("regulator", "admin"):
        raise PermissionDenied(_l("Only a regulator can record a policy notice."))
    clean = _clean_notice(session, values)
    notice = PolicyNotice(**clean, created_by_id=getattr(actor, "id", None))
    session.add(notice)
    session.flush()
    audit.record(session, "policy.notice", actor, notice, None, kind=notice.kind,
                 fee_type=notice.fee_type_code, amount=notice.amount, currency=notice.currency,
                 effective_from=notice.effective_from, reference=notice.reference)
    report = recheck_fee_type(session, notice.fee_type_code, actor)
    return notice, report


def recheck_fee_type(session: Session, fee_type_code: str, actor=None) -> CheckReport:
    """Judge every item that has ever been of this fee type by the policy rules."""
    report = CheckReport()
    ctx = context(session)
    ever = select(V.item_id).where(V.fee_type_code == fee_type_code)
    walked = list(_walk(session, V.item_id.in_(ever)))
    firms = _firms(session, {latest.firm_id for latest, _ in walked})
    findings = []
    for latest, previous in walked:
        if latest.kind == "publish":
            report.live += 1
            category, ports = firms.get(latest.firm_id, ("", ()))
            findings.extend(_item_findings(Entry(latest, previous, category, ports), ctx, POLICY_RULES))
    report.items = len(walked)
    item_ids = {latest.item_id for latest, _ in walked}
    scope = Scope({code: item_ids for code in POLICY_RULES}, {latest.item_id: latest.id for latest, _ in walked})
    candidates = _open_flags(session, item_ids=item_ids) + _flags_by_fingerprint(session, findings)
    _reconcile(session, findings, scope, candidates, actor, report)
    return report


def _clean_notice(session: Session, values: dict) -> dict:
    errors = []
    kind = (values.get("kind") or "").strip()
    if kind not in POLICY_KINDS:
        errors.append(_l("Choose what the notice does: abolish, merge, cap or official rate."))
    code = (values.get("fee_type_code") or "").strip().upper()
    if not session.scalar(select(FeeType.id).where(FeeType.code == code)):
        errors.append(_l("Unknown fee type %(code)s.", code=code or "—"))
    amount = values.get("amount")
    if amount in ("", None):
        amount = None
    else:
        try:
            amount = Decimal(str(amount)).quantize(Decimal("0.01"))
        except InvalidOperation:
            errors.append(_l("The amount must be a number."))
            amount = None
    if kind in ("cap", "official_rate") and (amount is None or amount <= 0):
        errors.append(_l("A cap or an official rate needs a positive amount."))
    effective = values.get("effective_from")
    if isinstance(effective, str):
        try:
            effective = date.fromisoformat(effective)
        except ValueError:
            effective = None
    if not isinstance(effective, date):
        errors.append(_l("Give the date the notice takes effect (YYYY-MM-DD)."))
    replaced_by = (values.get("replaced_by") or "").strip().upper()
    if kind == "merge" and not session.scalar(select(FeeType.id).where(FeeType.code == replaced_by)):
        errors.append(_l("A merge names the fee type that absorbs this one."))
    if errors:
        raise InvalidInput(errors[0], errors)
    return {"kind": kind, "fee_type_code": code, "amount": amount,
            "currency": (values.get("currency") or "CNY").strip().upper(),
            "unit": (values.get("unit") or "").strip(), "container_size": (values.get("container_size") or "").strip(),
            "port": (values.get("port") or "").strip().upper(), "replaced_by": replaced_by,
            "effective_from": effective, "reference": (values.get("reference") or "").strip(),
            "note": (values.get("note") or "").strip()}


# --- complaints and invoices (UNDISCLOSED) --------------------------------------------------

def check_charge(session: Session, firm: Firm, charge: Charge) -> dict | None:
    """UNDISCLOSED's evidence for a charge against the firm's schedule on its date, or None
    when the schedule covers it (the invoice check marks lines with this; nothing is written)."""
    ctx = context(session)
    firms = _firms(session, [firm.id])
    category, ports = firms.get(firm.id, ("", ()))
    schedule = [Entry.of(v, category, ports) for v in history.schedule_on(session, firm, charge.charged_on)]
    return rules.undisclosed(charge, schedule, ctx)


def raise_undisclosed(session: Session, complaint, actor=None) -> Flag | None:
    """Flag a complaint's charge that the firm's published schedule does not contain (or
    prices lower); called by the complaint service when a complaint is filed. Idempotent."""
    charge = Charge(complaint.fee_name, complaint.fee_type_code or "", complaint.amount, complaint.currency,
                    complaint.charged_on)
    evidence = check_charge(session, complaint.firm, charge)
    if evidence is None:
        return None
    evidence["complaint_id"] = complaint.id
    finding = Finding("UNDISCLOSED", complaint.firm_id, evidence.get("item_id", complaint.item_id),
                      evidence.get("version_id"), f"complaint:{complaint.id}", evidence,
                      complaint.fee_type_code or "", complaint_id=complaint.id)
    report = CheckReport()
    flags = _reconcile(session, [finding], Scope({}), _flags_by_fingerprint(session, [finding]), actor, report)
    return flags[0]


# --- keeping the flags ----------------------------------------------------------------------

def _open_flags(session: Session, item_ids: Iterable[int] | None = None, rule: str | None = None,
                fee_types: Iterable[str] | None = None) -> list[Flag]:
    base = select(Flag).where(Flag.status == "open")
    if rule is not None:
        base = base.where(Flag.rule == rule)
    if fee_types is not None:
        fee_types = sorted(set(fee_types))
        return list(session.scalars(base.where(Flag.fee_type_code.in_(fee_types)))) if fee_types else []
    if item_ids is None:
        return list(session.scalars(base))
    found = []
    for chunk in _chunks(sorted(set(item_ids))):
        found.extend(session.scalars(base.where(Flag.item_id.in_(chunk))))
    return found


def _flags_by_fingerprint(session: Session, findings: list[Finding]) -> list[Flag]:
    found = []
    for chunk in _chunks(sorted({f.fingerprint for f in findings})):
        found.extend(session.scalars(select(Flag).where(Flag.fingerprint.in_(chunk))))
    return found


def _reconcile(session: Session, findings: list[Finding], scope: Scope, candidates: list[Flag], actor,
               report: CheckReport) -> list[Flag]:
    """Bring the flags in line with the findings (see the module docstring); returns the
    flag of each finding, in order."""
    now = utcnow()
    by_fingerprint = {flag.fingerprint: flag for flag in candidates}
    open_by_subject = {(flag.rule, flag.subject): flag for flag in candidates if flag.status == "open"}
    matched: set[int] = set()
    raised: list[Flag] = []
    result: list[Flag] = []
    for finding in findings:
        report.found[finding.rule] += 1
        flag = by_fingerprint.get(finding.fingerprint)
        if flag is None and not RULES[finding.rule].event:
            flag = open_by_subject.get((finding.rule, finding.subject))
            # Only forward: never back onto a version older than the one the flag is on.
            if flag is not None and id(flag) not in matched and (flag.version_id or 0) <= (finding.version_id or 0):
                # The item changed and still breaks the rule: the open flag follows it.
                del by_fingerprint[flag.fingerprint]
                flag.version_id, flag.fingerprint = finding.version_id, finding.fingerprint
                by_fingerprint[flag.fingerprint] = flag
                _set_evidence(flag, finding)
            else:
                flag = None
        if flag is None:
            flag = Flag(rule=finding.rule, severity=RULES[finding.rule].severity, status="open",
                        firm_id=finding.firm_id, item_id=finding.item_id, version_id=finding.version_id,
                        complaint_id=finding.complaint_id, fee_type_code=finding.fee_type_code,
                        subject=finding.subject, fingerprint=finding.fingerprint, note="",
                        explanation=rules.explanation(finding.rule, finding.evidence), evidence=finding.evidence)
            session.add(flag)
            by_fingerprint[flag.fingerprint] = flag
            raised.append(flag)
        elif flag.status == "resolved":
            flag.status, flag.resolved_at = "open", None
            _set_evidence(flag, finding)
            report.reopened += 1
            audit.record(session, "flag.reopen", actor, flag, flag.firm_id, rule=flag.rule)
        elif flag.status == "open":
            _set_evidence(flag, finding)
        # confirmed or dismissed: a regulator has decided on this version; leave it be.
        matched.add(id(flag))
        result.append(flag)
    for flag in candidates:
        if flag.status == "open" and id(flag) not in matched and scope.covers(flag):
            flag.status, flag.resolved_at = "resolved", now
            report.resolved += 1
            audit.record(session, "flag.resolve", actor, flag, flag.firm_id, rule=flag.rule,
                         reason="the condition no longer holds")
    if raised:
        session.flush()  # the new flags' ids, for their audit events
        for flag in raised:
            audit.record(session, "flag.raise", actor, flag, flag.firm_id, rule=flag.rule,
                         item_id=flag.item_id, version_id=flag.version_id)
        report.raised += len(raised)
    # Flushed here: the checks read through Core statements, which do not autoflush.
    session.flush()
    return result


def _set_evidence(flag: Flag, finding: Finding) -> None:
    # Peer medians move as peers change; write only when the numbers did.
    if flag.evidence != finding.evidence:
        flag.evidence = finding.evidence
        flag.explanation = rules.explanation(finding.rule, finding.evidence)
