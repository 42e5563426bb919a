"""Read-side queries for the public pages: the directory, schedules, history, statistics."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from ..models import FeeItem, FeeItemVersion, Firm, FirmPort
from . import history


class Paged:
    """Page arithmetic for anything with `total`, `page` and `per_page`."""

    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass
class Page(Paged):
    items: list
    total: int
    page: int
    per_page: int


def paginate(session: Session, stmt, page: int, per_page: int) -> Page:
    page = max(1, page)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    return Page(rows, total, page, per_page)


def firm_directory(session: Session, category: str = "", port: str = "", q: str = "", status: str = "",
                   page: int = 1, per_page: int = 50) -> Page:
    stmt = select(Firm).options(selectinload(Firm.ports)).order_by(Firm.name_zh, Firm.id)
    if category:
        stmt = stmt.where(Firm.category == category)
    if port:
        stmt = stmt.where(Firm.id.in_(select(FirmPort.firm_id).where(FirmPort.port == port)))
    if status:
        stmt = stmt.where(Firm.status == status)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Firm.name_zh.ilike(like), Firm.name_en.ilike(like), Firm.credit_code.ilike(like)))
    return paginate(session, stmt, page, per_page)


def firm_by_code(session: Session, code: str) -> Firm | None:
    """The firm with its ports (every page of a firm shows them): one statement, not two."""
    return session.execute(select(Firm).options(joinedload(Firm.ports))
                           .where(Firm.credit_code == code.strip().upper())).unique().scalar_one_or_none()


def item_counts_by_firm(session: Session, firm_ids: list[int]) -> dict[int, int]:
    if not firm_ids:
        return {}
    rows = session.execute(
        select(FeeItem.firm_id, func.count()).where(FeeItem.firm_id.in_(firm_ids), FeeItem.status == "published")
        .group_by(FeeItem.firm_id)
    )
    return dict(rows.all())


def registry_figures(session: Session) -> dict:
    return {
        "firms": session.scalar(select(func.count()).select_from(Firm)) or 0,
        "items": session.scalar(select(func.count()).select_from(FeeItem).where(FeeItem.status == "published")) or 0,
        "versions": session.scalar(select(func.count()).select_from(FeeItemVersion)) or 0,
    }


def latest_changes(session: Session, limit: int = 15) -> list[FeeItemVersion]:
    return list(session.scalars(
        select(FeeItemVersion).options(selectinload(FeeItemVersion.firm))
        .order_by(FeeItemVersion.published_at.desc(), FeeItemVersion.id.desc()).limit(limit)
    ))


def published_item(session: Session, item_id: int) -> FeeItem | None:
    """An item the public may see: one with at least one published version."""
    item = session.get(FeeItem, item_id)
    if item is None or item.status == "draft":
        return None
    return item


def pending_versions(session: Session, firm_id: int, on: date) -> list[FeeItemVersion]:
    """Published changes that take effect after `on` (announced, not yet in force)."""
    return list(session.scalars(
        select(FeeItemVersion).where(FeeItemVersion.firm_id == firm_id, FeeItemVersion.effective_from > on)
        .order_by(FeeItemVersion.effective_from, FeeItemVersion.seq)
    ))


def chain_heads(session: Session, firm_ids) -> dict[int, str]:
    """Each firm's latest version hash (the head of its chain), printed beside its rows in
    a comparison or quote PDF so a reader can check them against the registry."""
    ids = list(firm_ids)
    if not ids:
        return {}
    return dict(session.execute(select(Firm.id, Firm.chain_head).where(Firm.id.in_(ids))).all())


schedule_on = history.schedule_on
