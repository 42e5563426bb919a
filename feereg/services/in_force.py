"""Versions in force across many firms at once, for comparisons and quotes.

A comparison or a quote needs a thin slice of a large registry — one fee type, or the
fee types a shipment needs, at one port — on one date. Each version carries the date
its item's next version takes over (superseded_from), so "in force on D" is a range
test on the version's own columns, answered by an index, with no look at other rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, exists, literal, or_, select
from sqlalchemy.orm import Session

from ..models import FeeItemVersion, Firm, FirmPort
from ..models.firm import firm_display_name
from .history import in_force_on

#: What comparisons and quotes read of a version: plain columns, not ORM entities, because
#: a quote at a busy port reads tens of thousands of them and entity loading would dominate.
VERSION_COLUMNS = (
    FeeItemVersion.id, FeeItemVersion.item_id, FeeItemVersion.fee_type_code, FeeItemVersion.fee_code,
    FeeItemVersion.name_zh, FeeItemVersion.name_en, FeeItemVersion.unit, FeeItemVersion.container_size,
    FeeItemVersion.cargo_scope, FeeItemVersion.trade, FeeItemVersion.direction, FeeItemVersion.amount,
    FeeItemVersion.currency, FeeItemVersion.tax_included, FeeItemVersion.tiers, FeeItemVersion.effective_from,
)
_FIRM_COLUMNS = (Firm.id.label("firm_id"), Firm.credit_code.label("firm_credit_code"),
                 Firm.name_zh.label("firm_name_zh"), Firm.name_en.label("firm_name_en"),
                 Firm.category.label("firm_category"), Firm.status.label("firm_status"))


@dataclass(frozen=True)
class FirmRef:
    """The few firm fields a comparison or quote shows (Firm's names, so templates need not care)."""

    id: int
    credit_code: str
    name_zh: str
    name_en: str
    category: str
    status: str

    @property
    def is_suspended(self) -> bool:
        return self.status == "suspended"

    def display_name(self, locale: str) -> str:
        return firm_display_name(self.name_zh, self.name_en, locale)


def port_condition(port: str):
    """A version applies at `port`: it names the port, or names none and its firm serves it."""
    names_port = (literal(";").concat(FeeItemVersion.ports).concat(";")).like(f"%;{port};%")
    firm_serves = exists().where(FirmPort.firm_id == FeeItemVersion.firm_id, FirmPort.port == port)
    return or_(names_port, and_(FeeItemVersion.ports == "", firm_serves))


def in_force_select(on: date, *conditions, columns=None):
    """A select of (FeeItemVersion, Firm), or of `columns`, for the versions in force on
    `on` (publishes only: a withdrawn item drops out) that meet `conditions`, which are
    expressions on FeeItemVersion and Firm columns.

    A version is in force when it is effective by `on` and the next version of its item
    (by effective date, then chain position) is not: effective_from <= on < superseded_from,
    which the registry service keeps as it appends versions. The conditions pick the
    candidates through their indexes (one fee type; a port's firms) and the date test
    reads only the candidate's own row: no version is probed for later ones. Because superseded_from follows
    the item's later versions whatever their fee type or scope, an item that changed type
    or scope since is correctly left out.
    """
    return (
        select(*(columns or (FeeItemVersion, Firm)))
        .select_from(FeeItemVersion)
        .join(Firm, Firm.id == FeeItemVersion.firm_id)
        .where(in_force_on(on), FeeItemVersion.kind == "publish", *conditions)
    )


def rows_by_version_id(session: Session, version_ids: list[int]) -> dict[int, tuple]:
    """{version id: (version row, FirmRef)} for the given versions, read in chunks."""
    firms: dict[int, FirmRef] = {}
    found = {}
    for start in range(0, len(version_ids), 500):
        chunk = version_ids[start:start + 500]
        stmt = (select(*VERSION_COLUMNS, *_FIRM_COLUMNS).join(Firm, Firm.id == FeeItemVersion.firm_id)
                .where(FeeItemVersion.id.in_(chunk)))
        for row in session.execute(stmt):
            firm = firms.get(row.firm_id)
            if firm is None:
                firm = firms[row.firm_id] = _firm_ref(row)
            found[row.id] = (row, firm)
    return found


def firm_refs(session: Session, firm_ids) -> dict[int, FirmRef]:
    """{firm id: FirmRef} for the given firms."""
    found = {}
    ids = sorted(firm_ids)
    for start in range(0, len(ids), 500):
        for row in session.execute(select(*_FIRM_COLUMNS).where(Firm.id.in_(ids[start:start + 500]))):
            found[row.firm_id] = _firm_ref(row)
    return found


def _firm_ref(row) -> FirmRef:
    return FirmRef(row.firm_id, row.firm_credit_code, row.firm_name_zh, row.firm_name_en, row.firm_category,
                   row.firm_status)
