"""The synthetic demo registry: firms, fee schedules with history, planted irregularities.

Everything is drawn from one seeded random generator against a fixed calendar
(history runs up to DEMO_DATE), so the same seed gives the same registry, hashes
included. Every firm is labelled as demo data in both its names.

The work is done in batches of firms (memory stays bounded), written through the
services' bulk writers or, on PostgreSQL, by COPY (feereg/demo/loader.py): a million
items with their history load in a few minutes.

Planted irregularities are the cases the audit rules must find; each is recorded
with the numbers that make it irregular so that recall and precision can be
measured against them (benchmarks/, --planted FILE).
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import credit_code
from ..models import FeeType, Firm, User
from ..services import accounts
from ..services.registry import PastItem, PastVersion
from . import loader
from . import vocabulary as vocab

#: The last day of the generated history; everything is effective on or before it.
DEMO_DATE = date(2026, 11, 1)
HISTORY_START = date(2024, 1, 1)
DEMO_PASSWORD = "demo-password-1"
DEMO_USERS = (("publisher@demo.feereg", "publisher"), ("regulator@demo.feereg", "regulator"),
              ("admin@demo.feereg", "admin"))
#: Items written per bulk statement round.
BATCH_ITEMS = 5000
#: A normal price change stays within this; planted steep rises go beyond STEEP_RISE.
NORMAL_CHANGE = (-0.08, 0.15)
NOTICE_DAYS = 30


@dataclass
class Planted:
    rule: str
    credit_code: str
    fee_code: str
    detail: dict

    def as_dict(self) -> dict:
        return {"rule": self.rule, "credit_code": self.credit_code, "fee_code": self.fee_code, **self.detail}


@dataclass
class Report:
    firms: int = 0
    items: int = 0
    versions: int = 0
    planted: list[Planted] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _FirmPlan:
    category: str
    ports: list[str]
    n_items: int
    values: dict
    id: int | None = None


def generate(session: Session, firms: int = 679, items: int = 3751, seed: int = 20261123,
             progress: Callable[[int], None] | None = None, planted_path: str | None = None,
             phase: Callable[[str], None] | None = None) -> Report:
    """Load the demo registry into an empty database (the caller commits).

    `progress(n)` is told of each batch's items once written; `phase(name)` of each step
    as it starts: policy, firms, then per batch items, history or hashes and copy, then
    analyze and users."""
    started = time.perf_counter()
    phase = phase or (lambda name: None)
    if items < firms:
        raise ValueError("give at least as many items as firms")
    rng = random.Random(seed)
    catalog = {ft.code: ft for ft in session.scalars(select(FeeType))}
    if not catalog:
        raise RuntimeError("the fee catalog is empty; run `feereg db upgrade` first")
    actor = User(id=None, email="demo@localhost", role="admin", password_hash="!")
    report = Report()
    phase("policy")
    _record_policy(session, actor)
    phase("firms")
    types = _TypeTable(catalog)
    plans = _plan_firms(rng, firms, items, types)
    planter = _Planter(rng, catalog)
    writer = loader.writer_for(session, actor)
    for batch in _batches(plans, BATCH_ITEMS):
        ids = writer.firm_ids([p.values for p in batch])
        for plan, firm_id in zip(batch, ids):
            plan.id = firm_id
        phase("items")
        past: list[PastItem] = []
        for plan in batch:
            past.extend(_firm_items(rng, plan, types, planter))
        report.versions += writer.write([p.values for p in batch], past, phase)
        report.items += len(past)
        report.firms += len(batch)
        if progress:
            progress(len(past))
    phase("analyze")
    writer.finish()
    session.expire_all()  # the bulk writers bypassed the identity map
    phase("users")
    report.users = _demo_users(session, plans, actor)
    report.planted = planter.planted
    if planted_path:
        Path(planted_path).write_text(json.dumps([p.as_dict() for p in planter.planted], ensure_ascii=False,
                                                 indent=1, default=str), encoding="utf-8")
    report.seconds = time.perf_counter() - started
    return report


# --- firms -----------------------------------------------------------------------------

def _plan_firms(rng: random.Random, n_firms: int, n_items: int, types: "_TypeTable") -> list[_FirmPlan]:
    categories = _spread(vocab.CATEGORY_SHARES, n_firms)
    rng.shuffle(categories)
    weights = [vocab.CATEGORY_WEIGHT[c] * rng.uniform(0.5, 1.5) for c in categories]
    counts = _allot(weights, n_items, [types.capacity(c) for c in categories])
    used_names: set[str] = set()
    plans = []
    for index, (category, count) in enumerate(zip(categories, counts)):
        ports = _draw_ports(rng, category)
        name_zh, name_en = _firm_name(rng, category, used_names)
        code = credit_code.make(f"914403{rng.randrange(10**11):011d}")
        plans.append(_FirmPlan(category, ports, count, {
            "credit_code": code, "name_zh": name_zh, "name_en": name_en, "category": category, "ports": ports,
            "contact_phone": f"0755-{rng.randrange(2000_0000, 8999_9999)}",
            "contact_email": f"fees{index + 1}@demo.feereg.example",
        }))
    _make_codes_unique(plans)
    return plans


def _spread(shares: dict[str, int], total: int) -> list[str]:
    """Categories in their real proportions, every category present when total allows."""
    counts = _allot(list(shares.values()), total, [total] * len(shares))
    return [cat for cat, n in zip(shares, counts) for _ in range(n)]


def _allot(weights: list[float], total: int, caps: list[int]) -> list[int]:
    """Split `total` in proportion to weights (largest remainder), at least 1 and at most cap each."""
    n = len(weights)
    counts = [1] * n
    remaining = total - n
    while remaining > 0:
        open_ = [i for i in range(n) if counts[i] < caps[i]]
        if not open_:
            raise ValueError("more items than the firms' schedules can hold; add firms")
        weight_sum = sum(weights[i] for i in open_)
        shares = {i: remaining * weights[i] / weight_sum for i in open_}
        given = 0
        for i in open_:
            extra = min(int(shares[i]), caps[i] - counts[i])
            counts[i] += extra
            given += extra
        if given == 0:  # hand out the remainders, biggest first
            for i in sorted(open_, key=lambda i: shares[i] - int(shares[i]), reverse=True)[:remaining]:
                counts[i] += 1
                given += 1
        remaining -= given
    return counts


class _TypeTable:
    """Per firm category: the catalog types it may charge today, in catalog order, and the
    (type, container size) slots they make. Worked out once per category, not per firm."""

    def __init__(self, catalog):
        self.catalog = catalog
        self._slots: dict[str, list[tuple[str, str]]] = {}

    def types_for(self, category: str) -> list[str]:
        return [code for code, ft in sorted(self.catalog.items()) if category in ft.charged_by_list
                and ft.abolished_from is None and code in vocab.PRICES]

    def slots(self, category: str) -> list[tuple[str, str]]:
        found = self._slots.get(category)
        if found is None:
            found = self._slots[category] = [(code, size) for code in self.types_for(category)
                                             for size in vocab.PRICES[code][1]]
        return found

    def capacity(self, category: str) -> int:
        return len(self.slots(category))


def _draw_ports(rng: random.Random, category: str) -> list[str]:
    pool = vocab.CATEGORY_PORTS[category]
    if category == "terminal":
        return [rng.choice(pool)]
    n = min(len(pool), 1 + int(rng.expovariate(0.9)))
    # Busy ports first: weight by position.
    chosen: list[str] = []
    while len(chosen) < n:
        port = pool[min(int(rng.expovariate(0.45)), len(pool) - 1)]
        if port not in chosen:
            chosen.append(port)
    return sorted(chosen)


def _firm_name(rng: random.Random, category: str, used: set[str]) -> tuple[str, str]:
    suffix_zh, suffix_en = vocab.CATEGORY_SUFFIX[category]
    for attempt in range(40):
        (d_zh, d_en), (a_zh, a_en), (b_zh, b_en) = (
            rng.choice(vocab.DISTRICTS), rng.choice(vocab.TRADE_NAMES), rng.choice(vocab.TRADE_NAMES))
        core_zh, core_en = (a_zh, a_en) if attempt < 10 or a_zh == b_zh else (a_zh + b_zh, a_en + b_en.lower())
        name_zh = f"{d_zh}{core_zh}{suffix_zh}"
        if name_zh not in used:
            break
    else:
        core_zh, core_en = f"{core_zh}{len(used)}", f"{core_en} {len(used)}"
        name_zh = f"{d_zh}{core_zh}{suffix_zh}"
    used.add(name_zh)
    return name_zh + vocab.DEMO_MARK_ZH, f"{d_en} {core_en} {suffix_en}{vocab.DEMO_MARK_EN}"


def _make_codes_unique(plans: list[_FirmPlan]) -> None:
    seen: set[str] = set()
    for index, plan in enumerate(plans):
        code = plan.values["credit_code"]
        if code in seen:  # 10^11 draws rarely collide; when they do, derive one from the index
            code = credit_code.make(f"914403{index:011d}")
        seen.add(code)
        plan.values["credit_code"] = code


def _batches(plans: list[_FirmPlan], size: int):
    batch, count = [], 0
    for plan in plans:
        batch.append(plan)
        count += plan.n_items
        if count >= size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


# --- fee items -------------------------------------------------------------------------

def _firm_items(rng: random.Random, plan: _FirmPlan, types: _TypeTable, planter: "_Planter") -> list[PastItem]:
    catalog = types.catalog
    slots = types.slots(plan.category)
    # The local charges every firm of the kind publishes come first, so that schedules are
    # complete enough to quote a shipment; then the common fees, then the occasional ones.
    core_codes = vocab.CORE_FEES.get(plan.category, ())
    size_rank = {"": 0, "20": 0, "40": 1, "40HQ": 2, "45": 3}
    core = sorted((s for s in slots if s[0] in core_codes), key=lambda s: (size_rank[s[1]], core_codes.index(s[0])))
    common = [s for s in slots if s[0] not in vocab.OCCASIONAL and s not in core]
    rare = [s for s in slots if s[0] in vocab.OCCASIONAL and s not in core]
    rng.shuffle(common)
    rng.shuffle(rare)
    chosen = (core + common + rare)[:plan.n_items]
    # A firm prices consistently: one level for all its fees, plus a little per fee.
    level = rng.lognormvariate(0, 0.10)
    items = []
    for number, (code, size) in enumerate(chosen, start=1):
        fee_code = f"{plan.values['credit_code'][-6:]}-{number:03d}"
        values = _item_values(rng, plan, catalog[code], size, fee_code, level)
        versions = _history(rng, values)
        items.append(PastItem(plan.id, versions))
    planter.plant(plan, items)
    return items


def _item_values(rng: random.Random, plan: _FirmPlan, fee_type: FeeType, size: str, fee_code: str,
                 level: float) -> dict:
    currency, prices = vocab.PRICES[fee_type.code]
    if fee_type.pricing_basis == "government_set":  # the official rate, exactly
        amount = prices[size]
    elif fee_type.pricing_basis == "government_guided":  # at or below the guided rate
        amount = _round(prices[size] * Decimal(str(rng.uniform(0.85, 1.0))), currency)
        amount = min(amount, prices[size])
    else:
        amount = _round(prices[size] * Decimal(str(level * rng.lognormvariate(0, 0.06))), currency)
    name_zh, name_en = fee_type.name_zh, fee_type.name_en
    variants = vocab.NAME_VARIANTS.get(fee_type.code)
    if variants and rng.random() < 0.35:
        name_zh, name_en = rng.choice(variants)
    if fee_type.code == "LOLO" and plan.category == "offport_yard" and rng.random() < 0.6:
        name_zh, name_en = vocab.NAME_VARIANTS["LOLO"][0]
    tiers = ""
    if fee_type.code in vocab.TIER_SHAPES:
        free = vocab.TIER_SHAPES[fee_type.code][0][0] + rng.choice((0, 0, 3))
        tiers = _tiers(free, vocab.TIER_SHAPES[fee_type.code], amount)
    ports = plan.ports if len(plan.ports) == 1 or rng.random() < 0.8 else sorted(rng.sample(plan.ports, 1))
    return {
        "fee_type_code": fee_type.code, "fee_code": fee_code, "name_zh": name_zh, "name_en": name_en,
        "unit": fee_type.unit, "container_size": size, "cargo_scope": "", "trade": "foreign",
        "direction": vocab.DIRECTION.get(fee_type.code, ""), "amount": amount, "currency": currency,
        "tax_included": True, "tax_rate": Decimal("6.00"), "tiers": tiers,
        "pricing_basis": fee_type.pricing_basis,
        "service_content": vocab.SERVICE_CONTENT.get(fee_type.group, "{zh}").format(zh=fee_type.name_zh),
        "legal_basis": vocab.LEGAL_BASIS.get(fee_type.pricing_basis, ""),
        "ports": ";".join(ports),
    }


def _tiers(free_days: int, shape, first_amount: Decimal) -> str:
    parts = [f"free:{free_days}"]
    start = free_days + 1
    for index, (_, end, factor) in enumerate(shape):
        band_end = None if end is None else max(end, start)
        parts.append(f"{start}-{band_end if band_end is not None else ''}:{_plain(first_amount * factor)}")
        if band_end is None:
            break
        start = band_end + 1
    return ";".join(parts)


def _round(value: Decimal, currency: str) -> Decimal:
    if value >= 100 and currency == "CNY":
        return (value / 5).quantize(Decimal("1"), ROUND_HALF_UP) * 5
    if value >= 10:
        return value.quantize(Decimal("1"), ROUND_HALF_UP).quantize(Decimal("0.01"))
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _plain(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01")).normalize(), "f")


def _history(rng: random.Random, values: dict) -> list[PastVersion]:
    """First publication in 2024–25; some items changed once or twice since, always with notice."""
    effective = HISTORY_START + timedelta(days=rng.randrange(0, 540))
    versions = [_version(rng, values, effective)]
    changes = rng.choices((0, 1, 2), weights=(70, 22, 8))[0]
    for _ in range(changes):
        effective = effective + timedelta(days=rng.randrange(120, 300))
        if effective > DEMO_DATE:
            break
        factor = Decimal(str(1 + rng.uniform(*NORMAL_CHANGE)))
        changed = _within_policy(_rescaled(values, factor))
        if changed == values:  # a government-set rate does not move with the market
            continue
        values = changed
        versions.append(_version(rng, values, effective, reason="年度调价"))
    return versions


def _within_policy(values: dict) -> dict:
    """Ordinary firms stay regular: a government-set fee at its official rate, a guided
    one at or below the guided rate (which the demo records as the cap)."""
    basis = values["pricing_basis"]
    if basis not in ("government_set", "government_guided"):
        return values
    official = vocab.PRICES[values["fee_type_code"]][1][values["container_size"]]
    amount = official if basis == "government_set" else min(values["amount"], official)
    return {**values, "amount": amount}


def _rescaled(values: dict, factor: Decimal) -> dict:
    amount = _round(values["amount"] * factor, values["currency"])
    tiers = values["tiers"]
    if tiers:
        free = int(tiers.split(";")[0].split(":")[1]) if tiers.startswith("free:") else 0
        shape = vocab.TIER_SHAPES[values["fee_type_code"]]
        tiers = _tiers(free, shape, amount)
    return {**values, "amount": amount, "tiers": tiers}


def _version(rng: random.Random, values: dict, effective: date, notice_days: int | None = None,
             reason: str = "") -> PastVersion:
    notice = notice_days if notice_days is not None else rng.randrange(NOTICE_DAYS + 1, 75)
    published = datetime.combine(effective - timedelta(days=notice), datetime.min.time()) + timedelta(
        seconds=rng.randrange(8 * 3600, 18 * 3600), microseconds=rng.randrange(1_000_000))
    published -= timedelta(hours=8)  # Shenzhen office hours, stored as UTC
    return PastVersion(effective, published, dict(values), reason=reason)


# --- planted irregularities ------------------------------------------------------------

class _Planter:
    """Turns a few firms' ordinary items into the irregularities each audit rule must find.

    Every rule gets its cases, at a rate that scales with the registry (at least a few
    each), and only firms of a category where the case is realistic are touched.
    """

    #: rule → (firm categories it is planted in, one case per this many firms of those, minimum)
    PLAN = {
        "ABOLISHED": (("offport_yard", "terminal", "warehouse"), 12, 4),
        "OVER_CAP": (("terminal",), 4, 2),
        "MARKUP": (("terminal",), 5, 2),
        "PEER_OUTLIER": (("offport_yard", "shipping_line", "forwarder"), 40, 5),
        "NO_NOTICE": (("shipping_line", "shipping_agent"), 30, 4),
        "STEEP_RISE": (("shipping_line", "shipping_agent", "forwarder"), 50, 4),
        "DUPLICATE": (("shipping_agent", "forwarder"), 60, 4),
        "MISPLACED": (("offport_yard",), 15, 3),
        "INCOMPLETE": (("terminal", "customs_broker", "forwarder"), 60, 4),
    }
    #: Official or capped rates the planted cases break (a regulator enters them as policy).
    OFFICIAL_CPD = Decimal("5.60")
    TUG_CAP = Decimal("9500.00")

    def __init__(self, rng: random.Random, catalog):
        self.rng = random.Random(rng.random())  # its own stream: planting never shifts the rest
        self.catalog = catalog
        self.planted: list[Planted] = []
        self.seen: dict[str, int] = {}
        self.done: dict[str, int] = {}

    def plant(self, plan: _FirmPlan, items: list[PastItem]) -> None:
        # At most one planted case per firm keeps every case's evidence unambiguous.
        for rule, (categories, every, minimum) in self.PLAN.items():
            if plan.category not in categories:
                continue
            self.seen[rule] = self.seen.get(rule, 0) + 1
            due = self.done.get(rule, 0) < minimum and self.seen[rule] % 3 == 0
            if not due and self.seen[rule] % every != every // 2:
                continue
            case = getattr(self, "_" + rule.lower())(plan, items)
            if case is not None:
                self.done[rule] = self.done.get(rule, 0) + 1
                self.planted.append(case)
                return

    def _item(self, items, *codes_, settled=False):
        """The firm's first item of one of these types; `settled`: unchanged for 200 days, so a
        new version fits before DEMO_DATE with room for notice."""
        for code in codes_:
            for entry in items:
                last = entry.versions[-1]
                if last.values["fee_type_code"] == code and (
                        not settled or last.effective_from <= DEMO_DATE - timedelta(days=200)):
                    return entry
        return None

    def _new_item(self, plan, items, fee_type_code, size, keep=(), name=None, **values) -> PastItem | None:
        """Add an item in place of the firm's last ordinary one, so the item total stays as asked."""
        room = [entry for entry in items if entry not in keep]
        if not room:
            return None
        items.remove(room[-1])
        fee_type = self.catalog[fee_type_code]
        fields = _item_values(self.rng, plan, fee_type, size, f"{plan.values['credit_code'][-6:]}-P01", 1.0)
        if name:
            fields["name_zh"], fields["name_en"] = name
        fields.update(values)
        effective = HISTORY_START + timedelta(days=self.rng.randrange(300, 600))
        entry = PastItem(plan.id, [_version(self.rng, fields, effective)])
        items.append(entry)
        return entry

    def _set(self, entry: PastItem, **values) -> None:
        # The item is published this way from the start: no earlier version that would
        # make the planted case look like a price change as well.
        first, last = entry.versions[0], entry.versions[-1]
        entry.versions = [PastVersion(first.effective_from, first.published_at, {**last.values, **values})]

    def _case(self, rule, plan, entry, **detail) -> Planted:
        return Planted(rule, plan.values["credit_code"], entry.versions[-1].values["fee_code"], detail)

    def _abolished(self, plan, items):
        if plan.category == "terminal" and self.rng.random() < 0.5:
            entry = self._new_item(plan, items, "TUGFUEL", "", amount=Decimal("1200.00"))
            return entry and self._case("ABOLISHED", plan, entry, fee_type="TUGFUEL", abolished_from="2017-01-01")
        entry = self._new_item(plan, items, "OLDSTOR", "20", amount=Decimal("25.00"),
                               tiers=_tiers(4, vocab.TIER_SHAPES["STORAGE"], Decimal("25.00")))
        return entry and self._case("ABOLISHED", plan, entry, fee_type="OLDSTOR", abolished_from="2019-04-01",
                                    replaced_by="STORAGE")

    def _over_cap(self, plan, items):
        amount = (self.TUG_CAP * Decimal("1.25")).quantize(Decimal("0.01"))
        entry = self._item(items, "TUG")
        if entry is not None:
            self._set(entry, amount=amount)
        else:
            entry = self._new_item(plan, items, "TUG", "", amount=amount)
        return entry and self._case("OVER_CAP", plan, entry, fee_type="TUG", cap=str(self.TUG_CAP),
                                    amount=str(amount))

    def _markup(self, plan, items):
        amount = (self.OFFICIAL_CPD * Decimal("1.30")).quantize(Decimal("0.01"))
        entry = self._item(items, "CPD")
        if entry is not None:
            self._set(entry, amount=amount)
        else:
            entry = self._new_item(plan, items, "CPD", "", amount=amount)
        return entry and self._case("MARKUP", plan, entry, fee_type="CPD", official=str(self.OFFICIAL_CPD),
                                    amount=str(amount))

    def _peer_outlier(self, plan, items):
        wanted = {"offport_yard": "LOLO", "shipping_line": "THC", "forwarder": "BOOKING"}[plan.category]
        entry = self._item(items, wanted)
        if entry is None:
            return None
        last = entry.versions[-1]
        factor = Decimal(self.rng.choice(("3.5", "4", "4.5")))
        size = last.values["container_size"]
        typical = vocab.PRICES[wanted][1][size]
        amount = _round(typical * factor, last.values["currency"])
        tiers = _tiers(int(last.values["tiers"].split(";")[0][5:]), vocab.TIER_SHAPES[wanted], amount) \
            if last.values["tiers"] else ""
        self._set(entry, amount=amount, tiers=tiers)
        return self._case("PEER_OUTLIER", plan, entry, fee_type=wanted, container_size=size,
                          typical=str(typical), factor=str(factor))

    def _no_notice(self, plan, items):
        entry = self._item(items, "THC", "DOC", "EIR", settled=True)
        if entry is None:
            return None
        last = entry.versions[-1]
        notice = self.rng.randrange(1, 8)
        values = _rescaled(last.values, Decimal("1.10"))
        effective = DEMO_DATE - timedelta(days=self.rng.randrange(10, 60))
        entry.versions.append(_version(self.rng, values, effective, notice_days=notice, reason="调价"))
        return self._case("NO_NOTICE", plan, entry, notice_days=notice, old=str(last.values["amount"]),
                          new=str(values["amount"]), effective_from=effective.isoformat())

    def _steep_rise(self, plan, items):
        entry = self._item(items, "DOC", "TLX", "AMD", "DO", settled=True)
        if entry is None:
            return None
        last = entry.versions[-1]
        values = _rescaled(last.values, Decimal("2"))
        effective = DEMO_DATE - timedelta(days=self.rng.randrange(10, 90))
        entry.versions.append(_version(self.rng, values, effective, reason="调价"))
        return self._case("STEEP_RISE", plan, entry, old=str(last.values["amount"]), new=str(values["amount"]))

    def _duplicate(self, plan, items):
        original = self._item(items, "DOC")
        if original is None:
            return None
        twin = self._new_item(plan, items, "DOC", "", keep=(original,), name=("单证费", "Document fee"),
                              amount=original.versions[-1].values["amount"],
                              direction=original.versions[-1].values["direction"],
                              # at the original's ports: a twin elsewhere would be a port's own price
                              ports=original.versions[-1].values["ports"])
        return twin and self._case("DUPLICATE", plan, twin, fee_type="DOC",
                                   other_fee_code=original.versions[-1].values["fee_code"])

    def _misplaced(self, plan, items):
        entry = self._new_item(plan, items, "THC", "20", amount=Decimal("1050.00"))
        return entry and self._case("MISPLACED", plan, entry, fee_type="THC", category=plan.category)

    def _incomplete(self, plan, items):
        entry = items[0] if items else None
        if entry is None:
            return None
        if entry.versions[-1].values["pricing_basis"] == "market":
            self._set(entry, service_content="详见附件")
            missing = "service_content"
        else:
            self._set(entry, legal_basis="")
            missing = "legal_basis"
        return self._case("INCOMPLETE", plan, entry, missing=missing)


# --- policy -----------------------------------------------------------------------------

#: The policy the planted OVER_CAP and MARKUP cases break, recorded as a regulator would.
DEMO_POLICY = (
    {"kind": "cap", "fee_type_code": "TUG", "amount": _Planter.TUG_CAP, "currency": "CNY",
     "effective_from": date(2019, 4, 1), "reference": "交水规〔2019〕2号（演示）",
     "note": "演示数据：拖轮费按政府指导价上限收取 / demo: tug fee capped at the guided rate"},
    {"kind": "official_rate", "fee_type_code": "CPD", "amount": _Planter.OFFICIAL_CPD, "currency": "CNY",
     "effective_from": date(2019, 4, 1), "reference": "交水规〔2019〕2号（演示）",
     "note": "演示数据：货物港务费代收，不得加价 / demo: cargo port dues collected at the official rate"},
)


def _record_policy(session: Session, actor) -> None:
    # Recorded before any item exists, so the re-check each notice triggers finds nothing yet;
    # the full scan after the load judges the items against them.
    from ..services import checks

    for values in DEMO_POLICY:
        checks.record_policy_notice(session, values, actor)


# --- demo logins -----------------------------------------------------------------------

def _demo_users(session: Session, plans: list[_FirmPlan], actor) -> list[str]:
    # The demo publisher works for the shipping line with the fullest schedule.
    lines = [p for p in plans if p.category == "shipping_line"] or plans
    firm = session.get(Firm, max(lines, key=lambda p: p.n_items).id)
    emails = []
    for email, role in DEMO_USERS:
        accounts.create_user(session, email, DEMO_PASSWORD, role, firm if role == "publisher" else None,
                             name="演示账号 demo", actor=actor)
        emails.append(email)
    return emails
