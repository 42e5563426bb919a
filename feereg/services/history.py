"""Published history: the per-firm hash chain and point-in-time reads.

The hash of a version is SHA-256 over the UTF-8 of a canonical JSON object (keys
sorted, no spaces, non-ASCII kept) holding every published field plus the
chain links. Amounts are written with two decimals, dates and times in ISO 8601
(times naive UTC with microseconds), so the same bytes come out of SQLite,
PostgreSQL or a bulk-download file: anyone can re-verify a chain offline.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ..models import PUBLISHED_FIELDS, FeeItem, FeeItemVersion, Firm

HASH_VERSION = "feereg-v1"


def _canonical_value(value):
    if isinstance(value, Decimal):
        return f"{value.quantize(Decimal('0.01'))}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return value


def canonical_record(version: FeeItemVersion, credit_code: str) -> dict:
    record = {name: _canonical_value(getattr(version, name)) for name in PUBLISHED_FIELDS}
    record.update(
        scheme=HASH_VERSION,
        credit_code=credit_code,
        item_id=version.item_id,
        seq=version.seq,
        kind=version.kind,
        effective_from=_canonical_value(version.effective_from),
        published_at=_canonical_value(version.published_at),
        published_by=version.published_by_id or 0,
        reason=version.reason or "",
        prev_hash=version.prev_hash or "",
    )
    return record


def compute_hash(version: FeeItemVersion, credit_code: str) -> str:
    payload = json.dumps(
        canonical_record(version, credit_code), sort_keys=True, ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class ChainProblem:
    firm_id: int
    credit_code: str
    firm_name: str
    seq: int | None
    version_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"version #{self.seq} (id {self.version_id})" if self.seq else "chain head"
        return f"firm {self.credit_code} {self.firm_name}: {where}: {self.reason}"


def verify_firm(session: Session, firm: Firm) -> list[ChainProblem]:
    problems: list[ChainProblem] = []

    def problem(version, reason):
        problems.append(ChainProblem(
            firm.id, firm.credit_code, firm.name_zh,
            version.seq if version is not None else None,
            version.id if version is not None else None, reason,
        ))

    prev_hash, expected_seq = "", 1
    rows = session.scalars(
        select(FeeItemVersion).where(FeeItemVersion.firm_id == firm.id).order_by(FeeItemVersion.seq)
        .execution_options(yield_per=2000)
    )
    last = None
    for version in rows:
        if version.seq != expected_seq:
            problem(version, f"sequence gap: expected #{expected_seq}")
        if version.prev_hash != prev_hash:
            problem(version, "prev_hash does not match the previous version's hash")
        actual = compute_hash(version, firm.credit_code)
        if actual != version.hash:
            problem(version, "content does not match its hash (row changed after publishing)")
        prev_hash, expected_seq, last = version.hash, version.seq + 1, version
    if (last.hash if last else "") != (firm.chain_head or "") or (last.seq if last else 0) != firm.chain_seq:
        problem(None, "the firm's chain head does not match its last version (versions removed?)")
    return problems


def verify_all(session: Session, progress=None) -> tuple[int, list[ChainProblem]]:
    firms = session.scalars(select(Firm).order_by(Firm.id)).all()
    problems: list[ChainProblem] = []
    for firm in firms:
        problems.extend(verify_firm(session, firm))
        if progress:
            progress(1)
    return len(firms), problems


def in_force_on(on: date):
    """The condition that a version (publish or withdrawal) is its item's latest effective
    on `on`: the latest effective_from <= on, ties broken by the highest seq. The registry
    service keeps superseded_from, the date the next version in that order starts."""
    return and_(FeeItemVersion.effective_from <= on,
                or_(FeeItemVersion.superseded_from.is_(None), FeeItemVersion.superseded_from > on))


def versions_in_force(session: Session, on: date, firm_id: int | None = None):
    """A select of the versions in force on a date: per item, the latest effective one.

    Withdrawals are included (kind='withdraw'); callers drop them for a schedule.
    """
    stmt = select(FeeItemVersion).where(in_force_on(on))
    if firm_id is not None:
        stmt = stmt.where(FeeItemVersion.firm_id == firm_id)
    return stmt


def schedule_on(session: Session, firm: Firm, on: date) -> list[FeeItemVersion]:
    stmt = versions_in_force(session, on, firm.id).where(FeeItemVersion.kind == "publish")
    stmt = stmt.order_by(FeeItemVersion.fee_type_code, FeeItemVersion.container_size, FeeItemVersion.id)
    return list(session.scalars(stmt))


def latest_version(session: Session, item: FeeItem) -> FeeItemVersion | None:
    """The newest published change of an item, whatever its effective date."""
    return session.scalars(
        select(FeeItemVersion).where(FeeItemVersion.item_id == item.id)
        .order_by(FeeItemVersion.seq.desc()).limit(1)
    ).first()


def item_history(session: Session, item_id: int) -> list[FeeItemVersion]:
    return list(session.scalars(
        select(FeeItemVersion).where(FeeItemVersion.item_id == item_id)
        .order_by(FeeItemVersion.seq.desc())
    ))


def firm_history(session: Session, firm_id: int, limit: int = 200, offset: int = 0):
    return list(session.scalars(
        select(FeeItemVersion).where(FeeItemVersion.firm_id == firm_id)
        .order_by(FeeItemVersion.seq.desc()).limit(limit).offset(offset)
    ))
