"""Versions in force across many firms at once, for comparisons and quotes.

history.versions_in_force ranks every version of every item (or of one firm). A
comparison or a quote needs a thin slice of a large registry — one fee type, or
the fee types a shipment needs, at one port — so the conditions pick the candidate
versions first and only those are checked for being the latest effective one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, exists, literal, or_, select
from sqlalchemy.orm import Session, aliased

from ..models import FeeItemVersion, Firm, FirmPort

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
        return self.name_en if locale.startswith("en") and self.name_en else self.name_zh


def port_condition(port: str):
    """A version applies at `port`: it names the port, or names none and its firm serves it."""
    names_port = (literal(";").concat(FeeItemVersion.ports).concat(";")).like(f"%;{port};%")
    firm_serves = exists().where(FirmPort.firm_id == FeeItemVersion.firm_id, FirmPort.port == port)
    return or_(names_port, and_(FeeItemVersion.ports == "", firm_serves))


def in_force_select(on: date, *conditions, columns=None):
    """A select of (FeeItemVersion, Firm), or of `columns`, for the versions in force on
    `on` (publishes only: a withdrawn item drops out) that meet `conditions`, which are
    expressions on FeeItemVersion and Firm columns.

    A version is in force when no later version of its item (by effective date, then
    chain position) is effective by `on`. Written as NOT EXISTS rather than ranking every
    version: the conditions select the few candidate versions through their indexes, and
    each needs one probe of ix_fee_item_version_item_effective. Because the test is on
    the item's later versions whatever their fee type or scope, an item that changed
    type or scope since is correctly left out.
    """
    later = aliased(FeeItemVersion)
    superseded = exists().where(
        later.item_id == FeeItemVersion.item_id,
        later.effective_from <= on,
        or_(later.effective_from > FeeItemVersion.effective_from,
            and_(later.effective_from == FeeItemVersion.effective_from, later.seq > FeeItemVersion.seq)),
    )
    return (
        select(*(columns or (FeeItemVersion, Firm)))
        .select_from(FeeItemVersion)
        .join(Firm, Firm.id == FeeItemVersion.firm_id)
        .where(FeeItemVersion.effective_from <= on, FeeItemVersion.kind == "publish", ~superseded, *conditions)
    )


def in_force_rows(session: Session, on: date, *conditions) -> list[tuple]:
    """[(version row, FirmRef)] for the versions in force that meet `conditions`; a version
    row has the attributes of VERSION_COLUMNS, named as on FeeItemVersion."""
    firms: dict[int, FirmRef] = {}
    result = []
    for row in session.execute(in_force_select(on, *conditions, columns=VERSION_COLUMNS + _FIRM_COLUMNS)):
        firm = firms.get(row.firm_id)
        if firm is None:
            firm = firms[row.firm_id] = FirmRef(row.firm_id, row.firm_credit_code, row.firm_name_zh,
                                                row.firm_name_en, row.firm_category, row.firm_status)
        result.append((row, firm))
    return result
