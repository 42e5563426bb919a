"""Writes to fee schedules. Every published change goes through `_append_version`,
which locks the firm row, extends its hash chain and hands the new versions to the
hooks (anomaly checks now, search indexing after commit). Functions flush; the caller
commits once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..models import PUBLISHED_FIELDS, FeeItem, FeeItemVersion, Firm
from ..models.types import utcnow
from . import audit, history, hooks
from .errors import FirmSuspended, NothingToPublish, PermissionDenied, StaleItem

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def today() -> date:
    """The registry's calendar day: effective dates are Shenzhen dates."""
    return datetime.now(LOCAL_TZ).date()


def can_edit(actor, firm: Firm) -> bool:
    if actor is None:
        return False
    if actor.role == "admin":
        return True
    return actor.role == "publisher" and actor.firm_id == firm.id


def ensure_can_edit(actor, firm: Firm) -> None:
    if not can_edit(actor, firm):
        raise PermissionDenied(_l("You may only change your own firm's fee schedule."))
    if firm.is_suspended:
        raise FirmSuspended(_l("This firm is suspended and cannot publish: %(reason)s",
                               reason=firm.status_reason or "—"))


def _check_lock(item: FeeItem, expected_lock: int | None) -> None:
    if expected_lock is not None and int(expected_lock) != item.lock_version:
        raise StaleItem(_l("This item was changed by someone else since you opened it. "
                           "Review the current values and make your change again."))


def _check_effective_date(effective_from: date, allow_backdate: bool) -> None:
    if not allow_backdate and effective_from < today():
        raise NothingToPublish(_l("The effective date %(date)s is in the past; published history "
                                  "cannot be back-dated.", date=effective_from.isoformat()))


def create_draft(session: Session, firm: Firm, values: dict, actor) -> FeeItem:
    ensure_can_edit(actor, firm)
    item = FeeItem(firm_id=firm.id, status="draft", has_draft=True)
    _assign(item, values)
    session.add(item)
    session.flush()
    audit.record(session, "item.create", actor, item, firm.id)
    hooks.items_changed(session, [item.id])
    return item


def update_draft(session: Session, item: FeeItem, values: dict, actor, expected_lock: int | None) -> FeeItem:
    ensure_can_edit(actor, item.firm)
    _check_lock(item, expected_lock)
    if _differs(item, values):
        _assign(item, values)
        item.has_draft = _differs_from_published(session, item)
        _flush_guarded(session)
        hooks.items_changed(session, [item.id])
    return item


def publish_item(session: Session, item: FeeItem, actor, effective_from: date, reason: str = "",
                 expected_lock: int | None = None, allow_backdate: bool = False) -> FeeItemVersion:
    ensure_can_edit(actor, item.firm)
    _check_lock(item, expected_lock)
    _check_effective_date(effective_from, allow_backdate)
    if item.status == "published" and not _differs_from_published(session, item):
        raise NothingToPublish(_l("Nothing has changed since the last published version."))
    firm = _lock_firm(session, item.firm_id)
    version = _append_version(session, firm, item, "publish", effective_from, actor, reason)
    audit.record(session, "item.publish", actor, item, firm.id, seq=version.seq,
                 effective_from=effective_from.isoformat())
    hooks.published(session, [version])
    return version


def withdraw_item(session: Session, item: FeeItem, actor, effective_from: date, reason: str = "",
                  expected_lock: int | None = None, allow_backdate: bool = False) -> FeeItemVersion:
    ensure_can_edit(actor, item.firm)
    _check_lock(item, expected_lock)
    _check_effective_date(effective_from, allow_backdate)
    if item.status != "published":
        raise NothingToPublish(_l("Only a published item can be withdrawn."))
    last = history.latest_version(session, item)
    firm = _lock_firm(session, item.firm_id)
    # The withdrawal records what was withdrawn: the last published values, not the draft.
    version = _append_version(session, firm, item, "withdraw", effective_from, actor, reason,
                              values=last.published_values() if last else None)
    audit.record(session, "item.withdraw", actor, item, firm.id, seq=version.seq)
    hooks.published(session, [version])
    return version


def discard_draft(session: Session, item: FeeItem, actor, expected_lock: int | None = None) -> FeeItem | None:
    """Drop unpublished edits: back to the published values, or delete a never-published item."""
    ensure_can_edit(actor, item.firm)
    _check_lock(item, expected_lock)
    last = history.latest_version(session, item)
    if last is None:
        audit.record(session, "item.delete_draft", actor, item, item.firm_id)
        session.delete(item)
        session.flush()
        return None
    _assign(item, last.published_values())
    item.has_draft = False
    _flush_guarded(session)
    return item


@dataclass
class Change:
    """One item to publish in a batch: an existing item (or None for a new one) and its values."""
    item: FeeItem | None
    values: dict
    effective_from: date
    kind: str = "publish"
    meta: dict = field(default_factory=dict)


def publish_changes(session: Session, firm: Firm, changes: list[Change], actor, reason: str = "",
                    allow_backdate: bool = False) -> list[FeeItemVersion]:
    """Publish many items of one firm in one chain extension (imports, the demo loader)."""
    ensure_can_edit(actor, firm)
    for change in changes:
        _check_effective_date(change.effective_from, allow_backdate)
    firm = _lock_firm(session, firm.id)
    versions = []
    for change in changes:
        item = change.item
        if item is None:
            item = FeeItem(firm_id=firm.id, status="draft", has_draft=True)
            _assign(item, change.values)
            session.add(item)
            session.flush()
        elif change.kind == "publish":
            _assign(item, change.values)
        values = change.values if change.kind == "withdraw" else None
        versions.append(_append_version(session, firm, item, change.kind, change.effective_from,
                                        actor, reason, values=values, flush=False))
    _flush_guarded(session)
    if versions:
        audit.record(session, "items.publish_batch", actor, firm, firm.id, count=len(versions),
                     first_seq=versions[0].seq, last_seq=versions[-1].seq)
    hooks.published(session, versions)
    return versions


@dataclass
class PastVersion:
    """One change of an item's past, for loading a whole history at once."""
    effective_from: date
    published_at: datetime
    values: dict
    kind: str = "publish"
    reason: str = ""


@dataclass
class PastItem:
    firm_id: int
    #: In the order they were published.
    versions: list[PastVersion]


def load_history(session: Session, items: list[PastItem], actor) -> int:
    """Write many items with their whole published past in a few statements (the demo
    generator, benchmarks at a million items); returns the number of versions.

    Same chain rules as publishing one change — each firm's row locked, versions in
    publishing order, every hash computed by history.compute_hash — but as bulk
    INSERTs, so it bypasses the per-item hooks: derived state is rebuilt whole after
    commit (hooks.bulk_loaded).
    """
    if actor is None or actor.role != "admin":
        raise PermissionDenied(_l("Only an operator can load history in bulk."))
    if not items:
        return 0
    firm_ids = sorted({entry.firm_id for entry in items})
    firms = {row.id: row for row in session.execute(
        select(Firm.id, Firm.credit_code, Firm.chain_seq, Firm.chain_head, Firm.status)
        .where(Firm.id.in_(firm_ids)).order_by(Firm.id).with_for_update())}
    suspended = [f.credit_code for f in firms.values() if f.status == "suspended"]
    if suspended:
        raise FirmSuspended(_l("This firm is suspended and cannot publish."))
    item_rows = []
    for entry in items:
        first, last = entry.versions[0], entry.versions[-1]
        item_rows.append({
            "firm_id": entry.firm_id, **{name: last.values[name] for name in PUBLISHED_FIELDS},
            "status": "withdrawn" if last.kind == "withdraw" else "published", "has_draft": False,
            "created_at": first.published_at, "updated_at": last.published_at, "lock_version": 1,
        })
    item_ids = session.scalars(
        insert(FeeItem).returning(FeeItem.id, sort_by_parameter_order=True), item_rows).all()

    chains = {firm_id: (firm.chain_seq, firm.chain_head or "", firm.credit_code) for firm_id, firm in firms.items()}
    version_rows, heads = chained_version_rows(items, item_ids, chains, getattr(actor, "id", None))
    session.execute(insert(FeeItemVersion), version_rows)
    session.execute(update(Firm), [{"id": firm_id, "chain_seq": seq, "chain_head": head}
                                   for firm_id, (seq, head) in heads.items()])
    audit.record(session, "items.load_history", actor, None, None, items=len(items),
                 versions=len(version_rows), firms=len(heads))
    hooks.bulk_loaded(session)
    return len(version_rows)


def _lock_firm(session: Session, firm_id: int) -> Firm:
    # Serialise one firm's publishes so its chain never forks; populate_existing
    # re-reads the chain head another transaction may have just moved. FOR NO KEY UPDATE
    # (key_share): the chain columns are no key, and a plain FOR UPDATE would wait on the
    # key-share lock that inserting an item of the firm takes, so two publishers each
    # adding a new item would deadlock.
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE, and pysqlite begins a transaction only at the first
        # write: a write to the row takes the database's write lock before the head is
        # read, so no other publish commits in between (it would reuse the sequence number).
        session.execute(text(f"UPDATE {Firm.__tablename__} SET chain_seq = chain_seq WHERE id = :id"),
                        {"id": firm_id})
    firm = session.execute(
        select(Firm).where(Firm.id == firm_id).with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if firm.is_suspended:
        raise FirmSuspended(_l("This firm is suspended and cannot publish."))
    return firm


def _append_version(session: Session, firm: Firm, item: FeeItem, kind: str, effective_from: date,
                    actor, reason: str, values: dict | None = None, flush: bool = True) -> FeeItemVersion:
    snapshot = values if values is not None else item.published_values()
    version = FeeItemVersion(
        item_id=item.id, firm_id=firm.id, seq=firm.chain_seq + 1, kind=kind,
        effective_from=effective_from, published_at=utcnow(),
        published_by_id=getattr(actor, "id", None), reason=reason or "", prev_hash=firm.chain_head or "",
        **{name: snapshot[name] for name in PUBLISHED_FIELDS},
    )
    version.hash = history.compute_hash(version, firm.credit_code)
    _link_superseded(session, version)
    firm.chain_seq, firm.chain_head = version.seq, version.hash
    item.status = "withdrawn" if kind == "withdraw" else "published"
    item.has_draft = False
    session.add(version)
    if flush:
        _flush_guarded(session)
    return version


def _link_superseded(session: Session, version: FeeItemVersion) -> None:
    """Fit a new version (the item's highest seq) into superseded_from, the in-force ranges.

    In its item's (effective_from, seq) order the new version comes after every version
    effective on or before its date (a tie goes to the higher seq) and before every later
    one: the version it follows now ends on its date, and it ends where the first later
    (future-dated) version starts. Only versions still open on that date can change, so
    the read is a few rows of ix_fee_item_version_item_effective; the changes are ORM
    updates, written in the same flush as the version.
    """
    on = version.effective_from
    try:
        # The query autoflushes this batch's earlier versions of the item (publish_changes).
        open_rows = session.scalars(select(FeeItemVersion).where(
            FeeItemVersion.item_id == version.item_id,
            or_(FeeItemVersion.superseded_from.is_(None), FeeItemVersion.superseded_from > on))).all()
    except StaleDataError as exc:
        raise StaleItem(_l("This item was changed by someone else since you opened it. "
                           "Review the current values and make your change again.")) from exc
    later = [row.effective_from for row in open_rows if row.effective_from > on]
    version.superseded_from = min(later, default=None)
    for row in open_rows:
        if row.effective_from <= on:
            row.superseded_from = on


def chained_version_rows(items: list[PastItem], item_ids: list[int], chains: dict[int, tuple[int, str, str]],
                         actor_id: int | None) -> tuple[list[dict], dict[int, tuple[int, str]]]:
    """The version rows of past items (`item_ids` their ids, in order), each firm's in
    publishing order, chained on from `chains` (firm id → chain seq, head, credit code) and
    hashed; with each firm's new chain seq and head."""
    by_firm: dict[int, list[tuple[int, PastVersion]]] = {}
    for item_id, entry in zip(item_ids, items):
        by_firm.setdefault(entry.firm_id, []).extend((item_id, v) for v in entry.versions)
    version_rows, heads = [], {}
    for firm_id, pending in by_firm.items():
        seq, prev_hash, code = chains[firm_id]
        pending.sort(key=lambda pair: pair[1].published_at)  # stable: an item's own order holds
        for item_id, past in pending:
            seq += 1
            row = {name: past.values[name] for name in PUBLISHED_FIELDS}
            row.update(item_id=item_id, firm_id=firm_id, seq=seq, kind=past.kind,
                       effective_from=past.effective_from, published_at=past.published_at,
                       published_by_id=actor_id, reason=past.reason, prev_hash=prev_hash)
            row["hash"] = prev_hash = history.compute_hash(SimpleNamespace(**row), code)
            version_rows.append(row)
        heads[firm_id] = (seq, prev_hash)
    link_superseded_rows(version_rows)
    return version_rows, heads


def link_superseded_rows(rows: list[dict]) -> None:
    """Set "superseded_from" in version rows (dicts with item_id, seq and effective_from)
    holding whole items: each ends where the next in its item's (effective_from, seq) order starts."""
    by_item: dict[int, list[dict]] = {}
    for row in rows:
        by_item.setdefault(row["item_id"], []).append(row)
    for versions in by_item.values():
        versions.sort(key=lambda row: (row["effective_from"], row["seq"]))
        for row, following in zip(versions, versions[1:]):
            row["superseded_from"] = following["effective_from"]
        versions[-1]["superseded_from"] = None


def _assign(item: FeeItem, values: dict) -> None:
    for name in PUBLISHED_FIELDS:
        if name in values:
            setattr(item, name, values[name])


def _differs(item: FeeItem, values: dict) -> bool:
    return any(getattr(item, k) != v for k, v in values.items() if k in PUBLISHED_FIELDS)


def _differs_from_published(session: Session, item: FeeItem) -> bool:
    # Compares the item in memory with its last version: no autoflush, whose optimistic-lock
    # failure would surface here as a bare StaleDataError instead of the caller's StaleItem.
    with session.no_autoflush:
        last = history.latest_version(session, item)
    if last is None or last.kind == "withdraw":
        return True
    return last.published_values() != item.published_values()


def _flush_guarded(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise StaleItem(_l("This item was changed by someone else since you opened it. "
                           "Review the current values and make your change again.")) from exc
