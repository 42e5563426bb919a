"""Price a shipment across firms: for each firm that could serve it, the published fees
in force that apply, itemised, totalled in CNY and ranked.

"A firm that could serve it": an active (not suspended) firm that lists the port
among the ports it serves, whose category takes part in this shipment (quote_rules),
and that publishes at least one fee in force that applies. Firms are ranked within
their category — a trucking firm's total is not comparable with a shipping line's —
cheapest first; a firm whose schedule lacks an expected fee comes after the complete
ones, because its total is understated.

The rules (which fees, which item, how many units) live in quote_rules; this module
fetches the data and puts the answer together, in two steps so that the cost does not
grow with the number of firms in Python:

1. One SQL query ranks every candidate firm: it picks each firm's applicable item per fee
   type (and per container size) as quote_rules.choose does, prices it with the rules'
   SQL quantity expression and the rates' SQL CASE, and totals per firm, with whether the
   firm lacks an expected fee or a rate. It returns, per category, the firm count and the
   ids of the firms that can be on the page.
2. Those firms only are read and itemised in Python by quote_rules (the exact Decimal
   totals, missing fees, notes), and ranked by the exact totals.

The SQL total is unrounded, while the rules round each line to the cent (in its currency,
then in CNY), so the exact total lies within a bound of it: half a cent per line, plus
half a cent times the rate, per line (a tiered per-day item has a line per band); the
query computes that bound per firm. Step 1 keeps, beyond the page, every firm whose
lowest possible total does not exceed the highest possible total of a firm on the page:
a firm it leaves out is beaten by a full page of firms whatever the rounding, so the
page is exactly what ranking every firm in Python gives. Tiered per-day fees are priced
in SQL exactly (quote_rules.tier_day_cost for each tier text, as a CASE).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from weakref import WeakKeyDictionary

from sqlalchemy import Integer, Numeric, String, and_, case, cast, false, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from ..models import FeeItemVersion, FeeType, Firm, FirmPort
from . import quote_rules as rules
from . import rates as rates_service
from .in_force import FirmRef, in_force_rows, in_force_select, port_condition
from .quote_rules import Shipment
from .registry import today

__all__ = ["Shipment", "quote_shipment", "QuoteResult", "FirmQuote", "QuoteLine"]


@dataclass
class QuoteLine:
    #: A version row (in_force.VERSION_COLUMNS): the attributes of a FeeItemVersion.
    version: object
    quantity: Decimal
    unit_amount: Decimal
    note: object
    total: Decimal
    #: None when no exchange rate is configured for the currency.
    total_cny: Decimal | None
    free: bool = False

    @property
    def currency(self) -> str:
        return self.version.currency

    @property
    def fee_type_code(self) -> str:
        return self.version.fee_type_code


@dataclass
class Missing:
    fee_type: str
    #: The container sizes the firm has no item for; empty when it has none at all.
    sizes: list[str] = field(default_factory=list)


@dataclass
class Unpriced:
    version: object
    reason: object


@dataclass
class FirmQuote:
    firm: FirmRef
    lines: list[QuoteLine] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    rank: int = 0

    @property
    def total_cny(self) -> Decimal:
        return sum((line.total_cny for line in self.lines if line.total_cny is not None), Decimal("0.00"))

    @property
    def unconverted(self) -> bool:
        return any(line.total_cny is None for line in self.lines)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unconverted

    @property
    def totals_by_currency(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for line in self.lines:
            totals[line.currency] += line.total
        return dict(sorted(totals.items()))


@dataclass
class CategoryQuotes:
    category: str
    #: The first `per_category` firms, ranked.
    quotes: list[FirmQuote]
    #: How many firms of the category could serve the shipment.
    total: int = 0


@dataclass
class QuoteResult:
    shipment: Shipment
    on: date
    rates: rates_service.RateTable
    groups: list[CategoryQuotes]
    assumptions: list
    fee_types: dict[str, FeeType]
    #: Categories that take part in the shipment but have no firm at this port publishing its fees.
    uncovered: list[str] = field(default_factory=list)

    @property
    def quotes(self) -> list[FirmQuote]:
        return [q for group in self.groups for q in group.quotes]


def _rank_key(quote: FirmQuote, lang: str):
    return (not quote.complete, quote.total_cny, quote.firm.display_name(lang), quote.firm.id)


def _quote_firm(firm: FirmRef, versions: list, expected: list[rules.Expect], shipment: Shipment,
                table: rates_service.RateTable) -> FirmQuote:
    by_type: dict[str, list] = defaultdict(list)
    for version in versions:
        by_type[version.fee_type_code].append(version)
    result = FirmQuote(firm)

    def cny(version):
        return table.to_cny(version.amount, version.currency)

    for expect in expected:
        published = by_type.get(expect.fee_type)
        if not published:  # the common case at a busy port: skip the rules' work
            if expect.required:
                result.missing.append(Missing(expect.fee_type))
            continue
        chosen, missing_sizes = rules.choose(published, shipment, cny)
        if expect.required and (not chosen or missing_sizes):
            result.missing.append(Missing(expect.fee_type, missing_sizes))
        for version, sizes in chosen:
            priced = rules.price(version, shipment, sizes)
            if priced.unpriced is not None:
                result.unpriced.append(Unpriced(version, priced.unpriced))
            for charge in priced.charges:
                total = charge.total
                result.lines.append(QuoteLine(version, charge.quantity, charge.unit_amount, charge.note, total,
                                              table.to_cny(total, version.currency), charge.free))
    return result


#: Firms ranked and itemised per category, unless the caller asks for another number.
PER_CATEGORY = 50
HALF_CENT = Decimal("0.005")

#: engine → (highest version id read, the tier texts of versions up to it).
_tier_texts_seen: WeakKeyDictionary = WeakKeyDictionary()


def _tier_texts(session: Session) -> frozenset[str]:
    """Every tier text ever published. Versions are immutable, so after the first read
    (once per process) only versions newer than the last read are looked at."""
    engine = session.get_bind()
    last = session.scalar(select(func.max(FeeItemVersion.id))) or 0
    seen_upto, texts = _tier_texts_seen.get(engine, (0, frozenset()))
    if last < seen_upto:  # a rebuilt database
        seen_upto, texts = 0, frozenset()
    if last > seen_upto:
        texts = texts | frozenset(session.scalars(
            select(FeeItemVersion.tiers).distinct().where(FeeItemVersion.id > seen_upto, FeeItemVersion.tiers != "")))
        _tier_texts_seen[engine] = (last, texts)
    return texts


def _flag(condition):
    return case((condition, 1), else_=0)


def _rank_firms(session: Session, shipment: Shipment, on: date, table: rates_service.RateTable,
                expected: dict[str, list[rules.Expect]], conditions: list, per_category: int
                ) -> dict[str, tuple[int, list[int]]]:
    """{category: (firms that could serve the shipment, ids of the firms that can be on the page)}.

    Mirrors quote_rules.choose and price in SQL; see the module's docstring for the bound.
    """
    V = FeeItemVersion
    required = {c: sorted({e.fee_type for e in found if e.required}) for c, found in expected.items()}
    pair = or_(*(and_(Firm.category == c, V.fee_type_code.in_(sorted({e.fee_type for e in found})))
                 for c, found in expected.items() if found))
    cand = in_force_select(on, *conditions, pair, columns=(
        V.id, V.firm_id, Firm.category, V.fee_type_code, V.unit, V.container_size, V.cargo_scope, V.trade,
        V.direction, V.amount, V.currency, V.tiers,
        case(*((and_(Firm.category == c, V.fee_type_code.in_(codes)), 1) for c, codes in required.items() if codes),
             else_=0).label("required"),
    )).cte("cand")

    def size_row(size):
        return select(cast(literal(size), String).label("size"),
                      cast(literal(rules.SIZE_FALLBACK.get(size, size)), String).label("fallback"),
                      cast(literal(shipment.containers[size]), Integer).label("boxes"),
                      cast(literal(rules.TEU[size] * shipment.containers[size]), Numeric(12, 2)).label("teu"))

    size_rows = [size_row(size) for size in shipment.sizes] or [size_row("20").where(false())]
    sizes = (union_all(*size_rows) if len(size_rows) > 1 else size_rows[0]).cte("sizes")

    rate = rates_service.rate_sql(table, cand.c.currency)
    is_box = cand.c.unit.in_(rules.CONTAINER_UNITS)
    size_rank = case((or_(sizes.c.size.is_(None), cand.c.container_size == ""), 0),
                     (cand.c.container_size == sizes.c.size, 2), else_=1)
    # choose(): per-box items size by size (the size, its fallback, any size), else one item
    # for the shipment; the most specific, then the dearer in CNY (none lowest), then the newer id.
    slots = (
        select(cand.c.firm_id, cand.c.category, cand.c.fee_type_code, cand.c.required, cand.c.unit,
               cand.c.amount, cand.c.currency, cand.c.tiers, _flag(is_box).label("is_box"),
               sizes.c.size.label("slot"), sizes.c.boxes, sizes.c.teu,
               func.max(_flag(is_box)).over(partition_by=(cand.c.firm_id, cand.c.fee_type_code)).label("has_box"),
               func.row_number().over(
                   partition_by=(cand.c.firm_id, cand.c.fee_type_code, sizes.c.size),
                   order_by=(size_rank.desc(), _flag(cand.c.cargo_scope != "").desc(),
                             _flag(cand.c.direction == shipment.direction).desc(),
                             _flag(cand.c.trade == shipment.trade).desc(),
                             func.coalesce(func.round(cand.c.amount * rate, 2), -1).desc(), cand.c.id.desc()),
               ).label("rn"))
        .select_from(cand.outerjoin(sizes, and_(is_box, or_(
            cand.c.container_size == "", cand.c.container_size == sizes.c.size,
            cand.c.container_size == sizes.c.fallback))))
        .where(or_(is_box, cand.c.container_size == "", cand.c.container_size.in_(shipment.sizes)))
    ).subquery("slots")

    s = slots.c
    rate = rates_service.rate_sql(table, s.currency)
    days_expected = shipment.storage_days > 0
    tier_costs = {text: rules.tier_day_cost(text, shipment.storage_days)
                  for text in _tier_texts(session)} if days_expected else {}
    line_cny = rules.quantity_sql(shipment, s.unit, s.amount, s.tiers, s.boxes, s.teu, tier_costs) * rate
    priced = s.unit.in_(rules.PRICED_UNITS)
    # The rounding bound: the lines the item makes (one per day band) × (½ cent × rate + ½ cent).
    lines = case((s.unit.in_(("per_container_day", "per_day")),
                  func.length(s.tiers) - func.length(func.replace(s.tiers, ";", "")) + 1), else_=1)
    slack = case((priced, lines * (rate * HALF_CENT + HALF_CENT)), else_=0)
    chosen = (
        select(s.firm_id, s.category, s.fee_type_code,
               func.max(s.required).label("required"), func.max(s.has_box).label("has_box"),
               func.count().label("slots"),
               func.coalesce(func.sum(line_cny), 0).label("total"),
               func.coalesce(func.sum(slack), 0).label("slack"),
               func.max(_flag(and_(priced, rate.is_(None)))).label("unconverted"))
        .where(s.rn == 1, or_(and_(s.has_box == 1, s.is_box == 1, s.slot.is_not(None)), s.has_box == 0))
        .group_by(s.firm_id, s.category, s.fee_type_code)
    ).subquery("chosen")

    c = chosen.c
    # choose() reports sizes without an item as missing: a required per-box fee is covered
    # when every size of the shipment has its item.
    covered = case((c.has_box == 1, _flag(c.slots == len(shipment.sizes))), else_=1)
    per_firm = (
        select(c.firm_id, c.category, func.sum(c.total).label("score"), func.sum(c.slack).label("slack"),
               func.max(c.unconverted).label("unconverted"), func.sum(c.required * covered).label("covered"))
        .group_by(c.firm_id, c.category)
    ).subquery("per_firm")

    f = per_firm.c
    required_count = case({cat: len(codes) for cat, codes in required.items()}, value=f.category, else_=0)
    incomplete = case((or_(f.unconverted == 1, f.covered < required_count), 1), else_=0)
    ranked = select(
        f.firm_id, f.category, incomplete.label("incomplete"), f.score, f.slack,
        func.row_number().over(partition_by=f.category, order_by=(incomplete, f.score, f.firm_id)).label("rn"),
        func.count().over(partition_by=f.category).label("n"),
        func.max(f.score + f.slack).over(partition_by=(f.category, incomplete),
                                         order_by=(f.score, f.firm_id)).label("reach"),
    ).subquery("ranked")

    r = ranked.c
    # The last place on the page, beside every row (windows, not a join: no second pass).
    at_cut = select(
        r.category, r.n, r.firm_id, r.rn, r.incomplete, r.score, r.slack,
        func.max(case((r.rn == per_category, r.incomplete))).over(partition_by=r.category).label("cut_incomplete"),
        func.max(case((r.rn == per_category, r.reach))).over(partition_by=r.category).label("cut_reach"),
    ).subquery("at_cut")
    k = at_cut.c
    keep = select(k.category, k.n, k.firm_id).where(or_(
        k.rn <= per_category, k.incomplete < k.cut_incomplete,
        and_(k.incomplete == k.cut_incomplete, k.score - k.slack <= k.cut_reach)))
    found: dict[str, tuple[int, list[int]]] = {}
    for category, n, firm_id in session.execute(keep):
        found.setdefault(category, (n, []))[1].append(firm_id)
    return found


def quote_shipment(session: Session, shipment: Shipment, on: date | None = None, lang: str = "zh",
                   rates_config=None, per_category: int = PER_CATEGORY) -> QuoteResult:
    """Quote `shipment` against every firm that could serve it, as published on `on`: per
    category the firm count and the first `per_category` firms, ranked and itemised."""
    on = on or today()
    table = rates_service.rates_on(on, rates_config)
    categories = rules.categories_for(shipment)
    expected = {c: rules.expected_fees(c, shipment) for c in categories}
    fee_types = sorted({e.fee_type for found in expected.values() for e in found})
    versions_by_firm: dict[FirmRef, list] = defaultdict(list)
    counts: dict[str, int] = {}
    if categories and fee_types:
        conditions = [
            FeeItemVersion.fee_type_code.in_(fee_types),
            Firm.status == "active",
            Firm.category.in_(categories),
            Firm.id.in_(select(FirmPort.firm_id).where(FirmPort.port == shipment.port)),
            port_condition(shipment.port),
            FeeItemVersion.direction.in_(("", shipment.direction)),
            FeeItemVersion.trade.in_(("", shipment.trade)),
            FeeItemVersion.cargo_scope.in_(("", shipment.cargo_scope)),
        ]
        ranked = _rank_firms(session, shipment, on, table, expected, conditions, per_category)
        counts = {category: n for category, (n, _ids) in ranked.items()}
        shown = sorted(firm_id for _n, ids in ranked.values() for firm_id in ids)
        if shown:
            for version, firm in in_force_rows(session, on, *conditions, FeeItemVersion.firm_id.in_(shown)):
                versions_by_firm[firm].append(version)

    by_category: dict[str, list[FirmQuote]] = defaultdict(list)
    for firm, versions in versions_by_firm.items():
        firm_quote = _quote_firm(firm, versions, expected[firm.category], shipment, table)
        if firm_quote.lines or firm_quote.unpriced:
            by_category[firm.category].append(firm_quote)
    groups = []
    for category in categories:
        quotes = sorted(by_category.get(category, []), key=lambda q: _rank_key(q, lang))[:per_category]
        for rank, firm_quote in enumerate(quotes, 1):
            firm_quote.rank = rank
        groups.append(CategoryQuotes(category, quotes, counts.get(category, len(quotes))))
    known = {ft.code: ft for ft in session.scalars(select(FeeType).where(FeeType.code.in_(fee_types)))} \
        if fee_types else {}
    return QuoteResult(
        shipment=shipment, on=on, rates=table,
        groups=[g for g in groups if g.quotes], assumptions=rules.assumptions(shipment),
        fee_types=known, uncovered=[g.category for g in groups if not g.quotes],
    )
