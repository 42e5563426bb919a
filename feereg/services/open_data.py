"""Read-side queries of the open data API (feereg/views/api*.py): the fee items in force
with filters, versions of an item or a firm, the catalog, regulators' flags and complaints,
and the markers behind the API's Last-Modified headers.

Searching and comparing are not repeated here: the API calls the same services as the
search and compare pages (services/search.py, services/compare.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..models import AuditEvent, Complaint, FeeItem, FeeItemVersion, FeeType, Firm, Flag
from ..models.types import utcnow
from ..search.query import QueryError, parse
from . import complaints, oversight
from . import search as search_service
from .in_force import in_force_select, port_condition
from .reads import Page, paginate
from .registry import LOCAL_TZ, today

#: Audit actions that change what the API shows of a firm (names, category, ports, status).
FIRM_CHANGES = ("firm.create", "firm.register", "firm.update", "firm.suspend", "firm.reinstate", "firms.load")


@dataclass
class ItemFilter:
    """Narrowing of the fee items in force; empty fields do not narrow. The scope fields
    (container size, cargo scope, trade, direction) match exactly; "" there means the
    items that apply to any."""
    firm_id: int | None = None
    fee_type: str | None = None
    port: str | None = None
    category: str | None = None
    currency: str | None = None
    unit: str | None = None
    pricing_basis: str | None = None
    container_size: str | None = None
    cargo_scope: str | None = None
    trade: str | None = None
    direction: str | None = None

    def conditions(self) -> list:
        V = FeeItemVersion
        found = []
        if self.firm_id is not None:
            found.append(V.firm_id == self.firm_id)
        if self.category:
            found.append(Firm.category == self.category)
        if self.port:
            found.append(port_condition(self.port))
        for column, value in ((V.fee_type_code, self.fee_type), (V.currency, self.currency), (V.unit, self.unit),
                              (V.pricing_basis, self.pricing_basis), (V.container_size, self.container_size),
                              (V.cargo_scope, self.cargo_scope), (V.trade, self.trade),
                              (V.direction, self.direction)):
            if value is not None and (value or column.key in _SCOPES):
                found.append(column == value)
        return found


_SCOPES = {"container_size", "cargo_scope", "trade", "direction"}


def _paginate_rows(session: Session, stmt, page: int, per_page: int) -> Page:
    """Like reads.paginate, for statements that select more than one entity per row."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = [tuple(row) for row in session.execute(stmt.limit(per_page).offset((page - 1) * per_page))]
    return Page(rows, total, page, per_page)


def fee_items_in_force(session: Session, on: date, f: ItemFilter, page: int, per_page: int) -> Page:
    """[(FeeItemVersion, Firm)] in force on `on`, by firm, fee type and item."""
    stmt = (in_force_select(on, *f.conditions())
            .order_by(Firm.credit_code, FeeItemVersion.fee_type_code, FeeItemVersion.item_id))
    return _paginate_rows(session, stmt, page, per_page)


def public_item(session: Session, item_id: int) -> FeeItem | None:
    """An item with at least one published version (a draft is nobody's business yet)."""
    item = session.get(FeeItem, item_id)
    return None if item is None or item.status == "draft" else item


def version_in_force(session: Session, item: FeeItem, on: date) -> FeeItemVersion | None:
    """The item's version in force on `on` (a withdrawal when withdrawn by then), or None
    when its first version takes effect later."""
    return session.scalar(
        select(FeeItemVersion).where(FeeItemVersion.item_id == item.id, FeeItemVersion.effective_from <= on,
                                     (FeeItemVersion.superseded_from.is_(None))
                                     | (FeeItemVersion.superseded_from > on))
        .order_by(FeeItemVersion.effective_from.desc(), FeeItemVersion.seq.desc()).limit(1))


def _versions(on: date | None, *conditions):
    stmt = select(FeeItemVersion).where(*conditions).order_by(FeeItemVersion.seq.desc())
    if on is not None:
        stmt = stmt.where(FeeItemVersion.effective_from <= on)
    return stmt


def item_versions(session: Session, item: FeeItem, on: date | None, page: int, per_page: int) -> Page:
    """The item's published changes, newest first; with `on`, those effective by then."""
    return paginate(session, _versions(on, FeeItemVersion.item_id == item.id), page, per_page)


def firm_versions(session: Session, firm: Firm, on: date | None, page: int, per_page: int) -> Page:
    """The firm's hash chain, newest link first; with `on`, the links effective by then."""
    return paginate(session, _versions(on, FeeItemVersion.firm_id == firm.id), page, per_page)


def fee_types(session: Session, group: str | None, page: int, per_page: int) -> Page:
    stmt = select(FeeType).order_by(FeeType.group, FeeType.code)
    if group:
        stmt = stmt.where(FeeType.group == group)
    return paginate(session, stmt, page, per_page)


def fee_type_groups(session: Session) -> list[str]:
    return list(session.scalars(select(FeeType.group).distinct().order_by(FeeType.group)))


def fee_type(session: Session, code: str) -> FeeType | None:
    return session.scalar(select(FeeType).where(FeeType.code == code.strip().upper()))


# --- search -------------------------------------------------------------------------------

class SearchRefused(ValueError):
    """The query cannot be searched (str() says why): the caller's mistake, not ours."""


def search(session: Session, q: str, filters: dict[str, str], sort: str, page: int,
           per_page: int) -> search_service.SearchPage:
    """The search page's search. A query it cannot search raises SearchRefused; an index
    that cannot be read comes back as the page's `error`."""
    try:
        parse(q)
    except QueryError as exc:  # the same message the search page shows
        raise SearchRefused(str(exc)) from None
    return search_service.search_fees(session, q, filters, sort, page, per_page)


# --- the regulator's reads ----------------------------------------------------------------

def flags(session: Session, f: oversight.FlagFilter, page: int, per_page: int) -> Page:
    # The reviewer is part of each flag's answer: loaded with the page, not flag by flag.
    return paginate(session, oversight.flags_query(f).options(selectinload(Flag.reviewer)), page, per_page)


def complaints_page(session: Session, status: str, firm_id: int | None, page: int, per_page: int) -> Page:
    stmt = complaints.listing(status, firm_id).options(selectinload(Complaint.firm))
    return paginate(session, stmt, page, per_page)


# --- Last-Modified markers ----------------------------------------------------------------

def start_of_today_utc() -> datetime:
    """The UTC moment the registry's current day began: what is in force "today" can
    change then without anyone publishing."""
    start = datetime.combine(today(), time.min, tzinfo=LOCAL_TZ)
    return start.astimezone(timezone.utc).replace(tzinfo=None)


def changed_at(session: Session, firm_id: int | None = None, item_id: int | None = None,
               today_dependent: bool = False) -> datetime:
    """When what the API shows of the registry (or of one firm, or one item and its firm)
    last changed: the newest published version, the newest firm change, and — for answers
    about "today" — the start of today. Never later than now."""
    V = FeeItemVersion
    published = select(func.max(V.published_at))
    if item_id is not None:
        published = published.where(V.item_id == item_id)
    elif firm_id is not None:
        published = published.where(V.firm_id == firm_id)
    created = select(func.max(Firm.created_at))
    firm_event = select(func.max(AuditEvent.at)).where(AuditEvent.action.in_(FIRM_CHANGES))
    if firm_id is not None:
        created = created.where(Firm.id == firm_id)
        firm_event = firm_event.where(AuditEvent.firm_id == firm_id)
    marks = [session.scalar(published), session.scalar(created), session.scalar(firm_event)]
    if today_dependent:
        marks.append(start_of_today_utc())
    now = utcnow()
    found = [m for m in marks if m is not None]
    return min(max(found), now) if found else now
