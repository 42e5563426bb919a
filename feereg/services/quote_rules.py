"""The rules of a shipment quote: which fee types a shipment incurs with each kind of
firm, which published item applies, and how many units of it.

Everything a quote assumes is decided here, so a shipper (and a regulator) can read
the assumptions in one place. The choices, for a full-container-load foreign-trade
shipment through one port:

* Shipping lines and shipping agents (the agent publishes the line's local charges)
  charge terminal handling, documentation and the equipment interchange receipt on
  every shipment; seal and manifest filing on exports; the delivery order on
  imports; detention for the days the boxes are kept, after its own free days.
  Freight surcharges (BAF, LSS, PSS, CIC, PCS), cleaning and equipment management
  are counted when published but not expected of every line. Fees charged only on
  request (B/L amendment or reissue, telex release) and US manifest filing (AMS,
  US trade only) are left out.
* Freight forwarders charge handling on every shipment and booking on exports; the
  line charges they pass on (THC, documentation …) count when they publish them.
  They also serve customs declaration, inspection, trucking, fumigation and stuffing
  when the shipper asks for those services.
* Customs brokers: the declaration fee when customs is asked for (one declaration per
  B/L), the inspection agency fee when inspection is.
* Terminals: the port handling lump-sum charge; storage for the days kept.
* Off-port yards: lift-on/lift-off; storage for the days kept; gate and yard service
  fees when published; stuffing (export) or stripping (import) when asked for.
* Trucking firms: trucking, when asked for. Warehouses and other firms: stuffing or
  stripping, fumigation and disinfection, when asked for.
* Tally firms and per-vessel-call fees (pilotage, tugs, berthing) bill the vessel,
  not the shipper: not quoted. Abolished fee types are never expected.
* The inspection shifting fee (查验移箱费) is not counted for foreign trade: when
  the inspection finds nothing wrong the government bears it.

A firm's category decides which of these it is asked for; a category is part of a
shipment when at least one of its expected (required) fees applies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from ..item_fields import parse_tiers

#: Twenty-foot equivalent units per container size.
TEU = {"20": Decimal("1"), "40": Decimal("2"), "40HQ": Decimal("2"), "45": Decimal("2.25")}
SIZES = tuple(TEU)
#: Units priced per container (of the item's size, or of every size for an any-size item).
CONTAINER_UNITS = ("per_container", "per_teu", "per_container_day")
#: Units a shipment description cannot price (no vessel, weight or volume in it).
UNPRICEABLE = {"per_call": _l("billed per vessel call"), "per_ton": _l("needs the cargo weight"),
               "per_cbm": _l("needs the cargo volume")}

#: The services a shipper may ask for, with their labels.
SERVICES = {
    "customs": _l("Customs declaration"),
    "inspection": _l("Customs inspection"),
    "trucking": _l("Trucking"),
    "fumigation": _l("Fumigation"),
    "stuffing": _l("Stuffing or stripping"),
}


@dataclass(frozen=True)
class Shipment:
    """What a shipper describes. Counts are per container size; trade is foreign unless
    said otherwise (an import or export shipment)."""

    port: str
    direction: str
    containers: dict[str, int]
    bills: int = 1
    storage_days: int = 0
    services: frozenset[str] = frozenset()
    cargo_scope: str = ""
    trade: str = "foreign"

    @property
    def sizes(self) -> list[str]:
        return [s for s in SIZES if self.containers.get(s, 0) > 0]

    @property
    def container_count(self) -> int:
        return sum(self.containers.get(s, 0) for s in SIZES)

    @property
    def teu(self) -> Decimal:
        return sum((TEU[s] * self.containers.get(s, 0) for s in SIZES), Decimal(0))

    @property
    def declarations(self) -> int:
        # One customs declaration covers one B/L; a shipper with a different split can
        # read the per-declaration amount on the line.
        return self.bills


@dataclass(frozen=True)
class Expect:
    """One fee type a firm of a category is expected to charge for a shipment."""

    fee_type: str
    required: bool = True
    directions: tuple[str, ...] = ("import", "export")
    #: A service that must be asked for, or "days" (the boxes are kept at least a day).
    needs: str | None = None
    trades: tuple[str, ...] = ("foreign", "domestic")

    def applies(self, shipment: Shipment) -> bool:
        if shipment.direction not in self.directions or shipment.trade not in self.trades:
            return False
        if self.needs == "days":
            return shipment.storage_days > 0
        return self.needs is None or self.needs in shipment.services


def _optional(*codes_: str, **kw) -> tuple[Expect, ...]:
    return tuple(Expect(code, required=False, **kw) for code in codes_)


EXPORT, IMPORT = ("export",), ("import",)

_LINE = (
    Expect("THC"), Expect("DOC"), Expect("EIR"),
    Expect("SEAL", directions=EXPORT), Expect("MANIFEST", directions=EXPORT),
    Expect("DO", directions=IMPORT),
    Expect("DET", needs="days"),
    *_optional("BAF", "LSS", "PSS", "CIC", "PCS", "EQM", "EDI"),
    *_optional("CLEAN", directions=IMPORT),
)
_SERVICES_BY_INTERMEDIARY = (
    Expect("CUSTOMS", needs="customs"),
    Expect("INSPAGENT", needs="inspection"),
    *_optional("INSPDECL", needs="inspection"),
    Expect("TRUCK", needs="trucking"),
    Expect("FUMIG", needs="fumigation"),
    Expect("STUFF", needs="stuffing", directions=EXPORT),
    Expect("STRIP", needs="stuffing", directions=IMPORT),
)

#: Firm category → the fee types it is expected to charge (documented above).
RULES: dict[str, tuple[Expect, ...]] = {
    "shipping_line": _LINE,
    "shipping_agent": _LINE,
    "forwarder": (
        Expect("HANDLING"), Expect("BOOKING", directions=EXPORT),
        *_optional("AGENCY", "THC", "DOC", "EIR"),
        *_optional("SEAL", "MANIFEST", directions=EXPORT), *_optional("DO", directions=IMPORT),
        *_SERVICES_BY_INTERMEDIARY,
    ),
    "customs_broker": (
        Expect("CUSTOMS", needs="customs"), Expect("INSPAGENT", needs="inspection"),
        *_optional("INSPDECL", needs="inspection"),
    ),
    "terminal": (
        Expect("PHC"), Expect("STORAGE", needs="days"),
        *_optional("LOLO", "TIS", "EDI"),
        Expect("INSPMOVE", needs="inspection", trades=("domestic",)),
    ),
    "offport_yard": (
        Expect("LOLO"), Expect("STORAGE", needs="days"),
        *_optional("GATE", "YARD"), *_optional("CLEAN", directions=IMPORT),
        Expect("STUFF", needs="stuffing", directions=EXPORT),
        Expect("STRIP", needs="stuffing", directions=IMPORT),
        Expect("INSPMOVE", needs="inspection", trades=("domestic",)),
    ),
    "trucking": (Expect("TRUCK", needs="trucking"),),
    "warehouse": (
        Expect("STUFF", needs="stuffing", directions=EXPORT),
        Expect("STRIP", needs="stuffing", directions=IMPORT),
        Expect("FUMIG", needs="fumigation"), *_optional("DISINF", needs="fumigation"),
    ),
    "other": (Expect("FUMIG", needs="fumigation"), *_optional("DISINF", needs="fumigation")),
    "tally": (),
}


def expected_fees(category: str, shipment: Shipment) -> list[Expect]:
    return [e for e in RULES.get(category, ()) if e.applies(shipment)]


def categories_for(shipment: Shipment) -> list[str]:
    """The firm categories that take part in this shipment: at least one required fee applies."""
    return [c for c in RULES if any(e.required for e in expected_fees(c, shipment))]


def assumptions(shipment: Shipment) -> list:
    """What the quote takes for granted, in words for the page."""
    said = [
        _l("Full container loads, %(trade)s trade; fees scoped to the other direction or trade do not apply.",
           trade=_l("foreign") if shipment.trade == "foreign" else _l("domestic")),
        _l("Per TEU: a 20' counts as 1 TEU, a 40' or 40' high cube as 2, a 45' as 2.25 (this shipment: %(teu)s TEU).",
           teu=_plain(shipment.teu)),
        _l("An item for a container size applies to that size only and is preferred; an item without a size "
           "applies to every size. A 40' high cube pays the 40' rate where no high-cube rate is published."),
        _l("Per declaration: one customs declaration per B/L (%(n)s).", n=shipment.declarations),
        _l("Fees a firm publishes in a foreign currency are converted to CNY at the configured rate in force "
           "on the quote date."),
        _l("Vessel charges (per call), ocean freight, fees charged only on request (B/L amendment, telex "
           "release) and tally fees are not part of a shipper's port costs here."),
    ]
    if shipment.storage_days:
        said.append(_l("The containers are kept %(n)s days: yards and terminals charge storage, lines "
                       "charge detention, each after its own free days and then by its day bands; days past "
                       "the last band are charged at its rate.", n=shipment.storage_days))
    if "inspection" in shipment.services and shipment.trade == "foreign":
        said.append(_l("The inspection shifting fee is not counted: for foreign trade the government bears it "
                       "when the inspection finds nothing wrong."))
    if shipment.cargo_scope:
        said.append(_l("Items for this cargo (e.g. reefer) are preferred over general items; items for other "
                       "special cargo do not apply."))
    return said


# --- which published item applies ------------------------------------------------------

def applies(version, shipment: Shipment) -> bool:
    """Direction, trade and cargo scoping: an empty scope means any."""
    return (version.direction in ("", shipment.direction) and version.trade in ("", shipment.trade)
            and version.cargo_scope in ("", shipment.cargo_scope))


#: A size whose rate applies when a firm publishes none for the size itself: a 40' high cube
#: is a 40' box, and many schedules list one 40' rate for both.
SIZE_FALLBACK = {"40HQ": "40"}


def _size_rank(version, size: str | None) -> int:
    if not size or not version.container_size:
        return 0
    return 2 if version.container_size == size else 1  # 1: the fallback size


def _specificity(version, size: str | None, shipment: Shipment) -> tuple:
    return (
        _size_rank(version, size),
        bool(version.cargo_scope),
        version.direction == shipment.direction,
        version.trade == shipment.trade,
    )


def choose(versions: list, shipment: Shipment, amount_cny) -> tuple[list[tuple[object, list[str]]], list[str]]:
    """Pick the items of one fee type that apply, and the sizes each covers.

    Returns ([(version, sizes)], missing sizes). Items priced per container (or TEU,
    or container-day) are chosen size by size, the most specific first (the size
    itself, then its fallback size, then an any-size item); otherwise one
    item for the shipment. Between equally specific items the higher amount counts, so
    a duplicate never makes a quote look cheaper than the bill. `amount_cny(version)`
    gives the amount compared (None sorts lowest).
    """
    if not versions:
        return [], []
    candidates = [v for v in versions if applies(v, shipment)]
    if not candidates:
        return [], []

    def best(pool, size=None):
        return max(pool, key=lambda v: (_specificity(v, size, shipment), amount_cny(v) or Decimal(-1), v.id))

    per_box = [v for v in candidates if v.unit in CONTAINER_UNITS]
    if per_box:
        chosen: dict[int, tuple[object, list[str]]] = {}
        missing = []
        for size in shipment.sizes:
            pool = [v for v in per_box if v.container_size in ("", size, SIZE_FALLBACK.get(size))]
            if not pool:
                missing.append(size)
                continue
            version = best(pool, size)
            chosen.setdefault(version.id, (version, []))[1].append(size)
        return list(chosen.values()), missing
    unsized = [v for v in candidates if not v.container_size or v.container_size in shipment.sizes]
    return ([(best(unsized), [])] if unsized else []), []


# --- how many units ----------------------------------------------------------------------

@dataclass
class Charge:
    """One priced line: quantity × unit amount, with how the quantity was counted."""

    quantity: Decimal
    unit_amount: Decimal
    note: object = ""
    free: bool = False

    @property
    def total(self) -> Decimal:
        return (self.quantity * self.unit_amount).quantize(Decimal("0.01"))


@dataclass
class Priced:
    charges: list[Charge] = field(default_factory=list)
    #: Why the item could not be priced (a unit the shipment cannot count), else None.
    unpriced: object = None


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _boxes(shipment: Shipment, sizes: list[str]) -> str:
    return ", ".join(f"{shipment.containers[s]} × {s}'" if s[-1].isdigit() else f"{shipment.containers[s]} × {s}"
                     for s in sizes)


def day_bands(days: int, tiers: str, flat_amount: Decimal) -> tuple[int, list[tuple[int, int, Decimal]]]:
    """(free days, [(first day, last day, daily amount)]) covering days 1..`days`.

    Without tiers every day is charged at the item's amount. Days beyond a closed last
    band are charged at that band's rate (the firm published no rate for them).
    """
    if not tiers:
        return 0, ([(1, days, flat_amount)] if days > 0 else [])
    free, bands = parse_tiers(tiers)
    used = []
    for index, (start, end, amount) in enumerate(bands):
        if start > days:
            break
        last_band = index == len(bands) - 1
        used.append((start, days if end is None or last_band else min(end, days), amount))
    return free, used


def price(version, shipment: Shipment, sizes: list[str]) -> Priced:
    """The charges of one applicable item for the sizes it was chosen for."""
    unit = version.unit
    amount = version.amount
    if unit in UNPRICEABLE:
        return Priced(unpriced=UNPRICEABLE[unit])
    if unit == "per_container":
        count = sum(shipment.containers[s] for s in sizes)
        return Priced([Charge(Decimal(count), amount, _boxes(shipment, sizes))])
    if unit == "per_teu":
        teu = sum((TEU[s] * shipment.containers[s] for s in sizes), Decimal(0))
        return Priced([Charge(teu, amount, _l("%(boxes)s = %(teu)s TEU (a 40' counts as 2 TEU, a 45' as 2.25)",
                                               boxes=_boxes(shipment, sizes), teu=_plain(teu)))])
    if unit == "per_bl":
        return Priced([Charge(Decimal(shipment.bills), amount, _l("%(n)s B/L", n=shipment.bills))])
    if unit == "per_shipment":
        return Priced([Charge(Decimal(1), amount, _l("one shipment"))])
    if unit == "per_declaration":
        return Priced([Charge(Decimal(shipment.declarations), amount,
                              _l("%(n)s declarations (one per B/L)", n=shipment.declarations))])
    if unit in ("per_container_day", "per_day"):
        boxes = sum(shipment.containers[s] for s in sizes) if unit == "per_container_day" else 1
        return Priced(_day_charges(version, shipment, boxes, sizes if unit == "per_container_day" else []))
    return Priced(unpriced=_l("unit %(unit)s cannot be counted from a shipment", unit=unit))


def _day_charges(version, shipment: Shipment, boxes: int, sizes: list[str]) -> list[Charge]:
    days = shipment.storage_days
    if days <= 0:
        return [Charge(Decimal(0), version.amount, _l("no days kept"), free=True)]
    free, bands = day_bands(days, version.tiers, version.amount)
    who = f" × {_boxes(shipment, sizes)}" if sizes else ""
    charges = []
    if free:
        charges.append(Charge(Decimal(0), Decimal(0), _l("%(free)s free days (%(n)s days kept)",
                                                           free=free, n=days), free=True))
    for start, end, rate in bands:
        if end < start:
            continue
        n_days = end - start + 1
        charges.append(Charge(Decimal(n_days * boxes), rate,
                              _l("days %(start)s–%(end)s: %(n)s days%(who)s", start=start, end=end, n=n_days, who=who)))
    return charges


# --- the same counting, vectorised, for ranking many firms at once (quote_rank) ----------------

def tier_day_cost(tiers: str, days: int) -> Decimal:
    """What one box (or one per-day item) costs for `days` under a tiered item: the sum of
    _day_charges' band lines. A tiered item's own amount plays no part (the bands carry the rates)."""
    _free, bands = day_bands(days, tiers, Decimal(0))
    return sum((Decimal(end - start + 1) * rate for start, end, rate in bands if end >= start), Decimal(0))


#: Units `price` turns into charges (lines); any other unit is listed as not priced.
PRICED_UNITS = ("per_container", "per_teu", "per_bl", "per_shipment", "per_declaration",
                "per_container_day", "per_day")
