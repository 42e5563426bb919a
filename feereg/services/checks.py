"""Running the anomaly rules (anomaly_rules.py) and keeping their flags.

Three ways in, one way out:

* `on_published` — hooked to every publish and import (hooks.on_publish), inside the
  publishing transaction: the changed items, their firms' other items (DUPLICATE) and
  every peer group a changed item leaves or joins (PEER_OUTLIER: one member's change
  moves the median for all; the groups' statistics come from the comparison snapshot,
  services/peers.py, and only the members at or above the outlier multiple are read).
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

import numpy as np
from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..models import POLICY_KINDS, FeeItemVersion, FeeType, Firm, FirmPort, Flag, PolicyNotice
from ..models.types import utcnow
from . import anomaly_rules as rules
from . import audit, history, hooks, peers
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

def context(session: Session, on: date | None = None, with_catalog: bool = True) -> Context:
    """with_catalog False: for the rules that read no fee type (completeness, and the policy
    notices in force), as a firm page's score does: the catalog is the larger read."""
    catalog = {ft.code: ft for ft in session.scalars(select(FeeType))} if with_catalog else {}
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
    return _judge_outliers(candidates.values(), stats, ctx)


def _judge_outliers(candidates: Iterable[tuple[Entry, float]], stats: dict[tuple, rules.PeerStats],
                    ctx: Context) -> list[Finding]:
    """Each candidate (entry, amount in CNY) judged against its ports' groups in `stats`
    (keyed by peer family + port)."""
    found = []
    for entry, amount in candidates:
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
    session.info.setdefault(_CHANGED_KEY, set()).update(v.item_id for v in versions)


#: session.info key: items published earlier in the open transaction (not committed, so
#: not in the snapshot the peer statistics start from).
_CHANGED_KEY = "feereg.checks.changed_items"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_changed(session: Session) -> None:
    session.info.pop(_CHANGED_KEY, None)


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
    # Every item changed in this transaction, as the transaction sees it (the peer
    # statistics take the others from the committed snapshot).
    changed = {latest.item_id: latest for latest, _ in walked}
    earlier = session.info.get(_CHANGED_KEY, set()) - item_ids
    changed.update((latest.item_id, latest) for latest, _ in _walk_items(session, earlier))
    # Peers need their firm only to know where an item naming no port applies.
    firms = _firms(session, firm_ids | {row.firm_id for row in changed.values() if not row.ports})

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
    peer_findings, members = _peer_check(session, ctx, families, set(changed),
                                         [entry(row) for row in changed.values() if row.kind == "publish"])
    findings.extend(peer_findings)

    firm_item_ids = {latest.item_id for latest, _ in firm_items}
    latest_versions.update({latest.item_id: latest.id for latest, _ in firm_items})
    candidates = _open_flags(session, item_ids=item_ids | firm_item_ids)
    candidates += _open_peer_flags(session, {key[0] for key in families}, members, item_ids)
    candidates += _flags_by_fingerprint(session, findings)
    # Which of the flags' items are peers (and their judged versions): what the scope is
    # asked about, instead of every member of the families.
    peer_versions = members({flag.item_id for flag in candidates if flag.item_id is not None})
    latest_versions.update(peer_versions)
    scope = Scope({code: set(item_ids) for code in SCANNED_RULES}, latest_versions)
    scope.items["DUPLICATE"] = firm_item_ids | item_ids
    scope.items["PEER_OUTLIER"] = set(peer_versions) | item_ids
    _reconcile(session, findings, scope, candidates, actor, report)
    report.seconds = time.perf_counter() - started
    return report


def _peer_check(session: Session, ctx: Context, families: set[tuple], changed: set[int], live: list[Entry]):
    """PEER_OUTLIER findings in these families, and `members(item_ids)`: item id → judged
    version id of those items that are members. `changed`: the items changed in this
    transaction, left out of the snapshot's (committed) members; `live`: the entries of
    those whose newest version is a publish, as the transaction sees them."""
    snap, withdrawals = peers.current(session)
    leave_out = np.array(sorted(changed), dtype=np.int64)
    findings: list[Finding] = []
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    own_members: dict[int, int] = {}
    for key in sorted(families):
        committed = peers.committed_members(snap, withdrawals, key, leave_out)
        own = [e for e in live if e.peer_key == key]
        findings.extend(_family_findings(session, ctx, snap, key, committed, own))
        order = np.argsort(committed.item_id)
        parts.append((committed.item_id[order], committed.version_id[order]))
        own_members.update((e.item_id, e.version_id) for e in own)

    def members(item_ids: Iterable[int]) -> dict[int, int]:
        found = {}
        item_ids = set(item_ids)
        wanted = np.array(sorted(item_ids - changed), dtype=np.int64)
        for items, versions in parts:
            at = np.minimum(np.searchsorted(items, wanted), max(len(items) - 1, 0))
            hit = items[at] == wanted if len(items) else np.zeros(len(wanted), bool)
            found.update(zip(wanted[hit].tolist(), versions[at[hit]].tolist()))
        found.update((i, v) for i, v in own_members.items() if i in item_ids)
        return found

    return findings, members


def _family_findings(session: Session, ctx: Context, snap, key: tuple, committed: peers.Committed,
                     own: list[Entry]) -> list[Finding]:
    """_peer_findings for one family, its committed members as snapshot columns: the
    same groups (one per port), statistics and candidates, float for float; only the
    candidates are read from the database and judged as Entries."""
    amounts = peers.amounts_cny(snap, committed, ctx)
    counts = peers.port_counts(snap, committed)
    valid = ~np.isnan(amounts)
    own_amounts = []
    for e in own:
        amount = float(e.amount) if e.currency == "CNY" else _converted(e, ctx)
        if amount is not None:  # no exchange rate configured: neither judged nor counted
            own_amounts.append((e, amount))
    stats: dict[tuple, rules.PeerStats] = {}
    rows: set[int] = set()
    candidates: dict[int, tuple[Entry, float]] = {}
    for port in sorted(set(counts) | {p for e, _ in own_amounts for p in e.port_list}):
        count = counts.get(port)
        count = np.zeros(len(amounts), np.int64) if count is None else count * valid
        extra = [amount for e, amount in own_amounts for p in e.port_list if p == port]
        group = np.repeat(amounts, count)
        if extra:
            group = np.concatenate((group, np.array(extra, dtype=np.float64)))
        if len(group) <= ctx.peer_min_count:
            continue
        ordered = np.sort(group)
        limit = ctx.peer_ratio * peers.median_sorted(ordered)
        if not ordered[-1] >= limit:
            continue
        stats[key + (port,)] = peers.stats_sorted(ordered)  # the MAD only where someone may be flagged
        rows.update(np.flatnonzero((count > 0) & (amounts >= limit)).tolist())
        for e, amount in own_amounts:
            if port in e.port_list and amount >= limit:
                candidates[e.item_id] = (e, amount)
    if rows:
        version_ids = committed.version_id[sorted(rows)].tolist()
        read = [row for chunk in _chunks(version_ids) for row in
                session.connection().execute(select(*_COLUMNS).where(V.id.in_(chunk)))]
        firms = _firms(session, {row.firm_id for row in read if not row.ports})
        for row in read:
            category, ports = firms.get(row.firm_id, ("", ()))
            e = Entry(row, None, category, ports)
            amount = float(e.amount) if e.currency == "CNY" else _converted(e, ctx)
            candidates[e.item_id] = (e, amount)
    return _judge_outliers((candidates[item_id] for item_id in sorted(candidates)), stats, ctx)


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


def _open_peer_flags(session: Session, fee_types: set[str], members, item_ids: set[int]) -> list[Flag]:
    """The open PEER_OUTLIER flags of these fee types that a check of their families can
    match or resolve: those of the families' members and of the changed items (the
    others it leaves alone). Their ids first: a fee type's flags can be many."""
    if not fee_types:
        return []
    found = session.execute(select(Flag.id, Flag.item_id).where(
        Flag.status == "open", Flag.rule == "PEER_OUTLIER", Flag.fee_type_code.in_(sorted(fee_types)))).all()
    peers_ = members({item_id for _, item_id in found if item_id is not None})
    wanted = sorted(flag_id for flag_id, item_id in found if item_id in peers_ or item_id in item_ids)
    flags = []
    for chunk in _chunks(wanted):
        flags.extend(session.scalars(select(Flag).where(Flag.id.in_(chunk))))
    return flags


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
        stored, taken = _insert_flags(session, raised)
        result = [stored.get(id(flag), flag) for flag in result]
        # A flag another transaction raised meanwhile is that one's to audit and count.
        raised = [stored[id(flag)] for flag in raised if flag.fingerprint not in taken]
        for flag in raised:
            audit.record(session, "flag.raise", actor, flag, flag.firm_id, rule=flag.rule,
                         item_id=flag.item_id, version_id=flag.version_id)
        report.raised += len(raised)
    # Flushed here: the checks read through Core statements, which do not autoflush.
    session.flush()
    return result


def _insert_flags(session: Session, flags: list[Flag]) -> tuple[dict[int, Flag], set[str]]:
    """Insert new flags: per flag given (by id()) the flag as stored, and the fingerprints
    of those another transaction had raised meanwhile.

    Two publishes committing at once can both find the same peer newly out of line. On
    PostgreSQL the second insert waits for the first and then does nothing: that flag
    stands as raised by the other publish, and is the one returned. Rows go in by
    fingerprint, so two transactions wait on each other's rows in one order, never in a
    cycle. (Not a savepoint: releasing one runs the session's after-commit listeners.)
    SQLite has one writer at a time, so there is no race to lose."""
    if session.get_bind().dialect.name != "postgresql":
        session.add_all(flags)
        session.flush()
        return {id(flag): flag for flag in flags}, set()
    ordered = sorted(flags, key=lambda flag: flag.fingerprint)
    rows = [{column.key: getattr(flag, column.key) for column in Flag.__table__.columns
             if getattr(flag, column.key) is not None} for flag in ordered]
    stored = {flag.fingerprint: flag for flag in session.scalars(
        pg_insert(Flag).on_conflict_do_nothing(constraint="uq_flag_fingerprint").returning(Flag), rows)}
    taken = [flag for flag in ordered if flag.fingerprint not in stored]
    stored.update(_taken_flags(session, taken))
    return {id(flag): stored[flag.fingerprint] for flag in flags}, {flag.fingerprint for flag in taken}


def _taken_flags(session: Session, flags: list[Flag]) -> dict[str, Flag]:
    """By fingerprint, the stored flags standing for these, which another transaction
    raised first. Such a flag may since have followed its item to a newer version (a third
    transaction moved its fingerprint on): it is then the flag of its rule and subject on
    the newest version. Flags are never deleted, and a flag keeps its rule and subject."""
    found: dict[str, Flag] = {}
    fingerprints = [flag.fingerprint for flag in flags]
    for start in range(0, len(fingerprints), 500):
        found.update((flag.fingerprint, flag) for flag in session.scalars(
            select(Flag).where(Flag.fingerprint.in_(fingerprints[start:start + 500]))))
    for flag in flags:
        if flag.fingerprint not in found:
            found[flag.fingerprint] = session.scalars(
                select(Flag).where(Flag.rule == flag.rule, Flag.subject == flag.subject)
                .order_by(Flag.version_id.desc().nulls_last(), Flag.id.desc()).limit(1)).one()
    return found


def _set_evidence(flag: Flag, finding: Finding) -> None:
    # Peer medians move as peers change; write only when the numbers did.
    if flag.evidence != finding.evidence:
        flag.evidence = finding.evidence
        flag.explanation = rules.explanation(finding.rule, finding.evidence)
