"""Compare one fee type across firms: every firm's amount in force, ranked in CNY.

The versions in force come from the in-memory snapshot of the registry (snapshot.py):
filtering, conversion at the dated rates, de-duplication, statistics and the order
are computed on its columns for every matching row, and only the rows a page shows
(and the chart's sample) are read from the database.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import FeeItem, FeeType
from ..models.firm import firm_display_name
from . import rates as rates_service
from . import snapshot as snapshot_service
from .in_force import FirmRef, rows_by_version_id
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


@dataclass(frozen=True)
class ChartPoint:
    """A dot of the comparison's chart: read off the snapshot, as a page of rows is not (a
    chart of 200 dots read 200 versions and firms from the database per request)."""

    item_id: int
    firm_name_zh: str
    firm_name_en: str
    amount_cny: Decimal

    def firm_name(self, locale: str) -> str:
        return firm_display_name(self.firm_name_zh, self.firm_name_en, locale)


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
    #: The rows asked for: the page, or every row when no page was asked for.
    rows: list[CompareRow]
    stats: Stats | None
    rates: rates_service.RateTable
    #: (unit, container size) → rows: more than one key means the rows are not like for like.
    mix: Counter = field(default_factory=Counter)
    #: Every matching row, and the firms they belong to.
    total: int = 0
    firm_count: int = 0
    currencies: list[str] = field(default_factory=list)
    #: Dots of the converted rows, lowest CNY amount first: all of them, or an even sample by rank
    #: (with the marked item's rows) when there are more than the chart asked for.
    chart_rows: list[ChartPoint] = field(default_factory=list)
    chart_sampled: bool = False

    @property
    def mixed(self) -> bool:
        return len(self.mix) > 1


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


class _CentsAsDecimals:
    """A sorted cents array read as Decimal amounts, for percentile() without converting it all."""

    def __init__(self, cents: np.ndarray):
        self.cents = cents

    def __len__(self) -> int:
        return len(self.cents)

    def __getitem__(self, index: int) -> Decimal:
        return Decimal(int(self.cents[index])).scaleb(-2)


def summarise_cents(ordered_cents: np.ndarray) -> Stats | None:
    """summarise() of amounts given as sorted integer cents: the same figures."""
    if not len(ordered_cents):
        return None
    ordered = _CentsAsDecimals(ordered_cents)

    def at(p: str) -> Decimal:
        return percentile(ordered, Decimal(p)).quantize(CENT, rounding=ROUND_HALF_UP)

    return Stats(len(ordered), ordered[0], at("0.25"), at("0.5"), at("0.75"), at("0.9"), ordered[-1])


def find_fee_type(session: Session, fee_type) -> FeeType | None:
    """A FeeType from its code (any case), or the FeeType itself."""
    if isinstance(fee_type, FeeType):
        return fee_type
    return session.scalar(select(FeeType).where(FeeType.code == str(fee_type).strip().upper()))


def _prefer_sized(snap, rows: np.ndarray) -> np.ndarray:
    """With a size chosen, an any-size item is the fallback of a firm's sized item for the
    same unit and scope, not a second price: drop it where the sized one exists."""
    v = snap.versions
    key = np.zeros(len(rows), dtype=np.int64)
    for column in (v.firm_id, v.unit, v.scope, v.trade, v.direction):
        values = column[rows].astype(np.int64)
        key = key * (int(values.max(initial=0)) + 1) + values
    sized = v.size[rows] != snap.vocab.size.find("")
    return rows[sized | ~np.isin(key, key[sized])]


def _order(snap, rows: np.ndarray, cny: np.ndarray, converted: np.ndarray, sort: str, descending: bool,
           lang: str) -> np.ndarray:
    """Positions into `rows` in the table's order. Rows without a CNY amount always come
    last, whichever way the table is sorted."""
    v = snap.versions
    names = snap.firms.name_rank(lang)[v.firm_id[rows]]
    version_ids = v.id[rows]
    if sort == "firm":
        order = np.lexsort((version_ids, names))  # a name's rank already breaks ties by firm id
        return order[::-1] if descending else order
    ranked = np.flatnonzero(converted)
    ranked = ranked[np.lexsort((version_ids[ranked], names[ranked], cny[ranked]))]
    if descending:
        ranked = ranked[::-1]
    rest = np.flatnonzero(~converted)
    rest = rest[np.lexsort((version_ids[rest], names[rest]))]
    return np.concatenate((ranked, rest))


def _chart_sample(order_by_amount: np.ndarray, marked: np.ndarray, dots: int) -> tuple[np.ndarray, bool]:
    if len(order_by_amount) <= dots:
        return order_by_amount, False
    stride = len(order_by_amount) / dots
    picked = np.unique(np.concatenate(((np.arange(dots) * stride).astype(np.int64),
                                       np.flatnonzero(marked[order_by_amount]))))
    return order_by_amount[picked], True


def compare_fee_type(session: Session, fee_type, unit: str | None = None, size: str | None = None,
                     port: str | None = None, category: str | None = None, on: date | None = None,
                     cargo_scope: str | None = None, sort: str = "amount", descending: bool = False,
                     lang: str = "zh", rates_config=None, page: int = 1, per_page: int | None = None,
                     chart_dots: int = 0, marked_item: int | None = None,
                     snap: snapshot_service.Snapshot | None = None) -> Comparison | None:
    """Every firm's amount in force for one fee type, narrowed, converted and summarised.

    size: an item for any size applies to every size, so it is included (unless the
    firm also has one for that size). cargo_scope: None for all, "" for general cargo
    only. per_page: the rows of one page, else all. chart_dots: how many converted rows
    the chart gets at most (sampled evenly by amount; the marked item's rows always).
    snap: the snapshot to read (the latest by default). Returns None for an unknown fee type.
    """
    fee_type = find_fee_type(session, fee_type)
    if fee_type is None:
        return None
    on = on or today()
    snap = snap or snapshot_service.current(session)
    rows = snap.rows(on, fee_types=[fee_type.code], units=[unit] if unit else None,
                     sizes=(size, "") if size else None,
                     scopes=[cargo_scope] if cargo_scope is not None else None,
                     categories=[category] if category else None, port=port or None)
    if size:
        rows = _prefer_sized(snap, rows)
    table = rates_service.rates_on(on, rates_config)
    cny, converted = snap.cny_cents(rows, table)
    v, vocab = snap.versions, snap.vocab
    by_amount = np.sort(cny[converted])
    mix = Counter()
    pair = v.unit[rows].astype(np.int64) * len(vocab.size.texts) + v.size[rows]
    for code in np.flatnonzero(np.bincount(pair)):
        unit_code, size_code = divmod(int(code), len(vocab.size.texts))
        mix[(vocab.unit.texts[unit_code], vocab.size.texts[size_code])] = int(np.count_nonzero(pair == code))
    firms = np.zeros(len(snap.firms.known), dtype=bool)
    firms[v.firm_id[rows]] = True

    order = _order(snap, rows, cny, converted, sort, descending, lang)
    shown = order if per_page is None else order[(page - 1) * per_page: page * per_page]
    charted, sampled = np.array([], dtype=np.int64), False
    if chart_dots:
        ascending = np.flatnonzero(converted)
        ascending = ascending[np.argsort(cny[ascending], kind="stable")]
        marked = v.item_id[rows] == (marked_item if marked_item is not None else -1)
        charted, sampled = _chart_sample(ascending, marked, chart_dots)
    fetched = rows_by_version_id(session, [int(i) for i in v.id[rows[shown]]])

    def row_at(position) -> CompareRow:
        version, firm = fetched[int(v.id[rows[position]])]
        amount = Decimal(int(cny[position])).scaleb(-2) if converted[position] else None
        return CompareRow(version, firm, amount)

    def point_at(position) -> ChartPoint:  # charted rows are all converted
        firm_id = int(v.firm_id[rows[position]])
        return ChartPoint(int(v.item_id[rows[position]]), snap.firms.names_zh[firm_id], snap.firms.names_en[firm_id],
                          Decimal(int(cny[position])).scaleb(-2))

    return Comparison(
        fee_type, on, [row_at(p) for p in shown], summarise_cents(by_amount), table, mix,
        total=len(rows), firm_count=int(np.count_nonzero(firms)),
        currencies=sorted(vocab.currency.texts[c] for c in np.flatnonzero(np.bincount(v.currency[rows]))),
        chart_rows=[point_at(p) for p in charted], chart_sampled=sampled,
    )


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
