"""Published changes to follow: the newest versions of the whole registry, of one firm, of
one fee type or at one port, each paired with the version it replaced so that a reader
sees what changed (old amount → new amount), not only the new state.

A feed is a short window (FEED_SIZE entries, newest first): readers poll it, and anything
older is in the item's history page and in the bulk download.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, aliased, selectinload

from ..models import FeeItemVersion, FeeType, Firm
from .in_force import port_condition

FEED_SIZE = 50

#: What a version did to its item, as a reader of the feed sees it.
NEW, CHANGED, WITHDRAWN = "new", "changed", "withdrawn"


@dataclass
class Change:
    version: FeeItemVersion
    #: The item's version before this one in its firm's chain; None for its first.
    previous: FeeItemVersion | None

    @property
    def what(self) -> str:
        if self.version.kind == "withdraw":
            return WITHDRAWN
        # A fee published again after a withdrawal is new to the reader, not a change.
        if self.previous is None or self.previous.kind == "withdraw":
            return NEW
        return CHANGED


@dataclass
class Feed:
    #: "registry", "firm", "fee_type" or "port".
    scope: str
    #: The credit code, fee type code or port code the feed follows ("" for the registry).
    key: str
    changes: list[Change]

    @property
    def updated(self) -> datetime | None:
        """When the newest change in the feed was published."""
        return max((c.version.published_at for c in self.changes), default=None)


def _newest(session: Session, *conditions, by_seq: bool = False, limit: int = FEED_SIZE) -> list[Change]:
    order = ((FeeItemVersion.seq.desc(),) if by_seq
             else (FeeItemVersion.published_at.desc(), FeeItemVersion.id.desc()))
    versions = list(session.scalars(
        select(FeeItemVersion).where(*conditions).order_by(*order).limit(limit)
        .options(selectinload(FeeItemVersion.firm), selectinload(FeeItemVersion.fee_type))
    ))
    previous = _previous_versions(session, versions)
    return [Change(v, previous.get((v.item_id, v.seq))) for v in versions]


def _previous_versions(session: Session, versions: list[FeeItemVersion]) -> dict[tuple, FeeItemVersion]:
    """(item id, seq) → the item's version just before it, in two bounded queries: one
    for the previous seq of each (an index probe per version), one to load those rows."""
    if not versions:
        return {}
    before = aliased(FeeItemVersion)
    previous_seq = (select(func.max(before.seq))
                    .where(before.item_id == FeeItemVersion.item_id, before.seq < FeeItemVersion.seq)
                    .correlate(FeeItemVersion).scalar_subquery())
    pairs = session.execute(
        select(FeeItemVersion.item_id, FeeItemVersion.seq, previous_seq)
        .where(FeeItemVersion.id.in_([v.id for v in versions]))
    ).all()
    wanted = {(item_id, prev): (item_id, seq) for item_id, seq, prev in pairs if prev is not None}
    if not wanted:
        return {}
    rows = session.scalars(select(FeeItemVersion).where(
        tuple_(FeeItemVersion.item_id, FeeItemVersion.seq).in_(list(wanted))))
    return {wanted[(row.item_id, row.seq)]: row for row in rows}


def registry_feed(session: Session, limit: int = FEED_SIZE) -> Feed:
    return Feed("registry", "", _newest(session, limit=limit))


def firm_feed(session: Session, firm: Firm, limit: int = FEED_SIZE) -> Feed:
    # A firm's chain position is its publishing order, and (firm_id, seq) is indexed.
    return Feed("firm", firm.credit_code, _newest(session, FeeItemVersion.firm_id == firm.id, by_seq=True,
                                                   limit=limit))


def fee_type_feed(session: Session, fee_type: FeeType, limit: int = FEED_SIZE) -> Feed:
    return Feed("fee_type", fee_type.code, _newest(session, FeeItemVersion.fee_type_code == fee_type.code,
                                                   limit=limit))


def port_feed(session: Session, port: str, limit: int = FEED_SIZE) -> Feed:
    """Changes that apply at a port: versions naming it, and versions naming no port of
    firms that serve it (the rule comparisons and quotes use)."""
    return Feed("port", port, _newest(session, port_condition(port), limit=limit))
