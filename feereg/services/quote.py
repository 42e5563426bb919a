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

1. quote_rank ranks every candidate firm on the registry's in-memory snapshot, with the
   rules vectorised, and returns per category the firm count and the ids of the firms
   that can be on the page (with a bound that makes the page exact; see there).
2. Those firms only are read and itemised in Python by quote_rules (the exact Decimal
   totals, missing fees, notes), and ranked by the exact totals.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import FeeType
from . import quote_rank, snapshot
from . import quote_rules as rules
from . import rates as rates_service
from .in_force import FirmRef, firm_refs, rows_by_version_id
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


def _show_versions(session: Session, quotes: list[FirmQuote]) -> None:
    """Give these quotes' lines the registry's version rows in place of the pricing fields."""
    ids = sorted({line.version.id for q in quotes for line in q.lines} |
                 {u.version.id for q in quotes for u in q.unpriced})
    rows = rows_by_version_id(session, ids)
    for q in quotes:
        for entry in (*q.lines, *q.unpriced):
            entry.version = rows[entry.version.id][0]


def _expected(shipment: Shipment) -> dict[str, list[rules.Expect]]:
    """Per category of firm that takes part in the shipment, the fees expected of it."""
    return {c: rules.expected_fees(c, shipment) for c in rules.categories_for(shipment)}


def _fee_types(expected: dict[str, list[rules.Expect]]) -> frozenset[str]:
    return frozenset(e.fee_type for found in expected.values() for e in found)


def fee_types_read(shipment: Shipment) -> frozenset[str]:
    """The fee types whose versions a quote of `shipment` reads: a change to any other
    leaves the quote as it was (result_cache)."""
    return _fee_types(_expected(shipment))


def quote_basis(snap: snapshot.Snapshot, shipment: Shipment, on: date | None = None, rates_config=None,
                per_category: int = PER_CATEGORY) -> tuple:
    """What a quote of `shipment` is worked out from on `snap`: the firms counted per category
    and the versions of the firms listed. Two snapshots with the same basis, and the same
    firm details and catalog, give the same quote (result_cache)."""
    on = on or today()
    table = rates_service.rates_on(on, rates_config)
    expected = _expected(shipment)
    if not any(expected.values()):
        return ()
    ranking = quote_rank.rank_firms(snap, shipment, on, table, expected, per_category)
    return tuple(sorted(ranking.counts.items())), tuple(snap.versions.id[ranking.positions].tolist())


def quote_shipment(session: Session, shipment: Shipment, on: date | None = None, lang: str = "zh",
                   rates_config=None, per_category: int = PER_CATEGORY, itemised: int | None = None,
                   snap: snapshot.Snapshot | None = None) -> QuoteResult:
    """Quote `shipment` against every firm that could serve it, as published on `on`: per
    category the firm count and the first `per_category` firms, ranked and totalled.

    The first `itemised` firms of each category (all, by default) have their lines'
    versions read from the registry, names and all; the rest carry the fields that price
    them (snapshot.PricingFields), which is all a total needs. snap: the snapshot to read
    (the latest by default).
    """
    on = on or today()
    itemised = per_category if itemised is None else itemised
    table = rates_service.rates_on(on, rates_config)
    expected = _expected(shipment)
    categories = list(expected)
    fee_types = sorted(_fee_types(expected))
    versions_by_firm: dict[FirmRef, list] = defaultdict(list)
    counts: dict[str, int] = {}
    if categories and fee_types:
        snap = snap or snapshot.current(session)
        ranking = quote_rank.rank_firms(snap, shipment, on, table, expected, per_category)
        counts = ranking.counts
        versions = snapshot.pricing_fields(snap, ranking.positions)
        firms = firm_refs(session, {v.firm_id for v in versions})
        for version in versions:
            versions_by_firm[firms[version.firm_id]].append(version)

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
    _show_versions(session, [q for g in groups for q in g.quotes[:itemised]])
    known = {ft.code: ft for ft in session.scalars(select(FeeType).where(FeeType.code.in_(fee_types)))} \
        if fee_types else {}
    return QuoteResult(
        shipment=shipment, on=on, rates=table,
        groups=[g for g in groups if g.quotes], assumptions=rules.assumptions(shipment),
        fee_types=known, uncovered=[g.category for g in groups if not g.quotes],
    )
