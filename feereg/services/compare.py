"""Compare one fee type across firms: every firm's amount in force, ranked in CNY.

One SQL query fetches the versions in force (in_force.in_force_select) with their
firms; conversion, de-duplication, sorting and statistics happen here in Python
because the rates are configuration, not data.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import FeeItem, FeeItemVersion, FeeType, Firm
from . import rates as rates_service
from .in_force import FirmRef, in_force_rows, port_condition
from .registry import today

SORTS = ("amount", "firm")
CENT = Decimal("0.01")


@dataclass
class CompareRow:
    #: A version row (in_force.VERSION_COLUMNS): the attributes of a FeeItemVersion.
    version: object
    firm: FirmRef
    #: None when no exchange rate is configured for the currency: shown, not ranked.
    amount_cny: Decimal | None

    @property
    def item_id(self) -> int:
        return self.version.item_id


@dataclass
class Stats:
    count: int
    min: Decimal
    q1: Decimal
    median: Decimal
    q3: Decimal
    p90: Decimal
    max: Decimal


@dataclass
class Comparison:
    fee_type: FeeType
    on: date
    rows: list[CompareRow]
    stats: Stats | None
    rates: rates_service.RateTable
    #: (unit, container size) → rows: more than one key means the rows are not like for like.
    mix: Counter = field(default_factory=Counter)

    @property
    def firm_count(self) -> int:
        return len({row.firm.id for row in self.rows})

    @property
    def mixed(self) -> bool:
        return len(self.mix) > 1

    @property
    def currencies(self) -> list[str]:
        return sorted({row.version.currency for row in self.rows})


def percentile(ordered: list[Decimal], p: Decimal) -> Decimal:
    """Linear interpolation between closest ranks (numpy's default), in Decimal.

    `ordered` must be sorted and non-empty; p in [0, 1]. p=0.5 is the usual median
    (the mean of the two middle values for an even count).
    """
    position = (len(ordered) - 1) * p
    lower = int(position)
    fraction = position - lower
    if lower + 1 >= len(ordered):
        return ordered[-1]
    return ordered[lower] + (ordered[lower + 1] - ordered[lower]) * fraction


def summarise(values: list[Decimal]) -> Stats | None:
    if not values:
        return None
    ordered = sorted(values)

    def at(p: str) -> Decimal:
        return percentile(ordered, Decimal(p)).quantize(CENT, rounding=ROUND_HALF_UP)

    return Stats(len(ordered), ordered[0], at("0.25"), at("0.5"), at("0.75"), at("0.9"), ordered[-1])


def find_fee_type(session: Session, fee_type) -> FeeType | None:
    """A FeeType from its code (any case), or the FeeType itself."""
    if isinstance(fee_type, FeeType):
        return fee_type
    return session.scalar(select(FeeType).where(FeeType.code == str(fee_type).strip().upper()))


def _prefer_sized(rows: list[CompareRow]) -> list[CompareRow]:
    """With a size chosen, an any-size item is the fallback of a firm's sized item for the
    same unit and scope, not a second price: drop it where the sized one exists."""
    sized = {(r.firm.id, r.version.unit, r.version.cargo_scope, r.version.trade, r.version.direction)
             for r in rows if r.version.container_size}
    return [r for r in rows if r.version.container_size or
            (r.firm.id, r.version.unit, r.version.cargo_scope, r.version.trade, r.version.direction) not in sized]


def sort_rows(rows: list[CompareRow], sort: str = "amount", descending: bool = False,
              lang: str = "zh") -> list[CompareRow]:
    """Rows without a CNY amount always come last, whichever way the table is sorted."""
    if sort == "firm":
        ordered = sorted(rows, key=lambda r: (r.firm.display_name(lang).lower(), r.firm.id, r.version.id),
                         reverse=descending)
        return ordered
    ranked = sorted((r for r in rows if r.amount_cny is not None),
                    key=lambda r: (r.amount_cny, r.firm.display_name(lang).lower(), r.version.id),
                    reverse=descending)
    return ranked + [r for r in rows if r.amount_cny is None]


def compare_fee_type(session: Session, fee_type, unit: str | None = None, size: str | None = None,
                     port: str | None = None, category: str | None = None, on: date | None = None,
                     cargo_scope: str | None = None, sort: str = "amount", descending: bool = False,
                     lang: str = "zh", rates_config=None) -> Comparison | None:
    """Every firm's amount in force for one fee type, narrowed, converted and summarised.

    size: an item for any size applies to every size, so it is included (unless the
    firm also has one for that size). cargo_scope: None for all, "" for general cargo
    only. Returns None for an unknown fee type.
    """
    fee_type = find_fee_type(session, fee_type)
    if fee_type is None:
        return None
    on = on or today()
    conditions = [FeeItemVersion.fee_type_code == fee_type.code]
    if unit:
        conditions.append(FeeItemVersion.unit == unit)
    if size:
        conditions.append(FeeItemVersion.container_size.in_((size, "")))
    if cargo_scope is not None:
        conditions.append(FeeItemVersion.cargo_scope == cargo_scope)
    if category:
        conditions.append(Firm.category == category)
    if port:
        conditions.append(port_condition(port))
    table = rates_service.rates_on(on, rates_config)
    rows = [CompareRow(version, firm, table.to_cny(version.amount, version.currency))
            for version, firm in in_force_rows(session, on, *conditions)]
    if size:
        rows = _prefer_sized(rows)
    stats = summarise([r.amount_cny for r in rows if r.amount_cny is not None])
    mix = Counter((r.version.unit, r.version.container_size) for r in rows)
    return Comparison(fee_type, on, sort_rows(rows, sort, descending, lang), stats, table, mix)


def comparable_fee_types(session: Session) -> list[tuple[FeeType, int]]:
    """The catalog with how many published items each type has (the compare index page).

    Counted on the items' working copies — cheap and close enough for a list; the
    comparison itself reads the versions in force.
    """
    counts = dict(session.execute(
        select(FeeItem.fee_type_code, func.count()).where(FeeItem.status == "published")
        .group_by(FeeItem.fee_type_code)
    ).all())
    types = session.scalars(select(FeeType).order_by(FeeType.group, FeeType.code)).all()
    return [(ft, counts.get(ft.code, 0)) for ft in types]
