"""The anomaly rules for irregular shipping-line and yard charges (DESIGN.md, "Anomaly rules").

Each rule is a small pure function with a code, a severity and a message: it reads an
`Entry` (an item's latest published version, the version before it, its firm) and a
`Context` (thresholds from configuration, the judging date, the catalog, the policy
notices, exchange rates) and returns the evidence — a dict of the numbers behind the
finding, which also fills the message — or None. No rule touches the database:
feereg/services/checks.py gathers what they read, runs them and keeps the flags.

Amounts are compared in CNY with the exchange rates in force on the judging date
(services/rates.py, the conversion comparisons use). Peer statistics use floats: they
decide whether to flag, while the evidence shows the published Decimal amounts.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Callable, Iterable

from flask_babel import gettext

from . import rates as rates_service

CENT = Decimal("0.01")
#: Scaling that makes the MAD estimate a standard deviation for normally distributed data.
MAD_SCALE = 1.4826
#: Effective dates are Shenzhen dates; published_at is naive UTC.
LOCAL_OFFSET = timedelta(hours=8)
GOVERNMENT_PRICED = ("government_set", "government_guided")
_RANGE = re.compile(r"\d\s*(?:-|~|～|至|到)\s*\d")


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated when shown (describe)."""
    return message


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    #: Message per variant ("" is the default); placeholders are evidence keys.
    messages: dict[str, str]
    #: Judges one change (the latest version against the one before it): its flag stays
    #: with that version, instead of following the item to later versions.
    event: bool = False

    def message(self, evidence: dict) -> str:
        return self.messages.get(evidence.get("variant", ""), self.messages[""])


RULES: dict[str, Rule] = {}
#: Rules judged on each item alone, in order.
ITEM_RULES: list[tuple[Rule, Callable]] = []


def _rule(code: str, severity: str, message: str, event: bool = False, per_item: bool = True, **variants):
    rule = RULES[code] = Rule(code, severity, {"": message, **variants}, event)

    def register(fn):
        if per_item:
            ITEM_RULES.append((rule, fn))
        fn.rule = rule
        return fn
    return register


def explanation(code: str, evidence: dict) -> str:
    """The stored (English) explanation: the message msgid filled with the evidence."""
    return RULES[code].message(evidence) % _Args(evidence)


def describe(flag) -> str:
    """The explanation of a flag in the reader's language."""
    rule = RULES.get(flag.rule)
    if rule is None:
        return flag.explanation
    evidence = flag.evidence or {}
    # Translated first, filled after: a message must not fail over a key old evidence lacks.
    return gettext(rule.message(evidence)) % _Args(_labelled(evidence))


#: Evidence keys holding codes, shown by their label in the reader's language (the stored
#: explanation and the evidence table keep the codes).
_LABELLED = {"port": "PORTS", "category": "CATEGORIES", "charged_by": "CATEGORIES", "unit": "UNITS"}


def _labelled(evidence: dict) -> dict:
    from .. import codes
    from ..i18n import current_language

    lang = current_language()
    shown = dict(evidence)
    for key, table_name in _LABELLED.items():
        value = evidence.get(key)
        if isinstance(value, str) and value:
            table = getattr(codes, table_name)
            shown[key] = ("、" if lang == "zh" else ", ").join(
                codes.label(table, part.strip(), lang) for part in value.split(","))
    return shown


class _Args(dict):
    """Evidence as message arguments: a key a message needs but the evidence lacks shows as '—'."""

    def __missing__(self, key):
        return "—"


# --- what the rules read -----------------------------------------------------------------

#: The version columns an Entry is built from, in this order (checks.py selects them so).
ENTRY_FIELDS = ("id", "item_id", "firm_id", "seq", "kind", "fee_code", "fee_type_code", "name_zh", "unit",
                "container_size", "cargo_scope", "trade", "direction", "amount", "currency", "pricing_basis",
                "service_content", "legal_basis", "ports", "effective_from", "published_at")


class Entry:
    """An item's latest published version with the little the rules need around it."""

    __slots__ = ("version_id", "item_id", "firm_id", "fee_code", "fee_type_code", "name_zh", "unit",
                 "container_size", "cargo_scope", "trade", "direction", "amount", "currency",
                 "pricing_basis", "service_content", "legal_basis", "ports", "effective_from",
                 "published_at", "prev_amount", "prev_currency", "prev_version_id", "firm_category",
                 "port_list")

    def __init__(self, row: tuple, prev: tuple | None = None, firm_category: str = "", firm_ports: tuple = ()):
        """`row`, `prev`: values in ENTRY_FIELDS order (unpacking a tuple is several times
        faster than reading named attributes, and a full scan builds a million of these)."""
        (self.version_id, self.item_id, self.firm_id, _seq, _kind, self.fee_code, self.fee_type_code,
         self.name_zh, self.unit, self.container_size, self.cargo_scope, self.trade, self.direction,
         self.amount, self.currency, self.pricing_basis, self.service_content, self.legal_basis, ports,
         self.effective_from, self.published_at) = row
        self.ports = ports
        if prev is not None and prev[4] == "publish":
            self.prev_version_id, self.prev_amount, self.prev_currency = prev[0], prev[13], prev[14]
        else:
            self.prev_version_id = self.prev_amount = self.prev_currency = None
        self.firm_category = firm_category
        # An item naming no port applies wherever its firm works.
        self.port_list = tuple(ports.split(";")) if ports else tuple(firm_ports)

    @classmethod
    def of(cls, version, firm_category: str = "", firm_ports: tuple = ()) -> "Entry":
        """From a FeeItemVersion (or any object with its attributes)."""
        return cls(tuple(getattr(version, name) for name in ENTRY_FIELDS), None, firm_category, firm_ports)

    @property
    def peer_key(self) -> tuple:
        """Peers charge the same fee type, per the same unit, for the same container size and
        cargo scope (a reefer rate is not a general-cargo rate); the port is added per port."""
        return (self.fee_type_code, self.unit, self.container_size, self.cargo_scope)

    @property
    def duplicate_key(self) -> tuple:
        return (self.firm_id, self.fee_type_code, self.unit, self.container_size, self.cargo_scope,
                self.trade, self.direction)


class Policy:
    """The catalog's policy and the PolicyNotice rows, answering "what applies on date D"."""

    def __init__(self, notices: Iterable = ()):
        self._by: dict[tuple[str, str], list] = {}
        for notice in notices:
            self._by.setdefault((notice.kind, notice.fee_type_code), []).append(notice)

    def in_force(self, kinds: tuple[str, ...], entry: Entry, on: date):
        """The notice of one of `kinds` in force on `on` for the entry's scope: the most
        narrowly scoped one, and of those the latest (it replaced the earlier ones)."""
        best = None
        for kind in kinds:
            for notice in self._by.get((kind, entry.fee_type_code), ()):
                if notice.effective_from > on or not _in_scope(notice, entry):
                    continue
                rank = (notice.specificity, notice.effective_from, notice.id or 0)
                if best is None or rank > best[0]:
                    best = (rank, notice)
        return best[1] if best else None

    def kinds(self, fee_type_code: str) -> set[str]:
        """The kinds of notice recorded for a fee type."""
        return {kind for kind, code in self._by if code == fee_type_code}


def _in_scope(notice, entry: Entry) -> bool:
    return ((not notice.unit or notice.unit == entry.unit)
            and (not notice.container_size or notice.container_size == entry.container_size)
            and (not notice.port or notice.port in entry.port_list))


@dataclass
class Context:
    #: The day the checks run (a Shenzhen date).
    on: date
    catalog: dict
    policy: Policy
    rates: rates_service.RateTable
    notice_days: int = 30
    steep_rise_percent: Decimal = Decimal(50)
    peer_min_count: int = 5
    peer_ratio: float = 3.0
    peer_mad_z: float = 5.0
    vague: tuple[str, ...] = ()
    #: `vague` as one pattern: a million items are checked against it in a full scan.
    vague_pattern: re.Pattern | None = None
    charged_by: dict[str, set] = field(default_factory=dict)
    abolished_names: dict[str, str] = field(default_factory=dict)
    _applicable: dict = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, config, on: date, catalog: dict, notices: Iterable) -> "Context":
        return cls(
            on=on, catalog=catalog, policy=Policy(notices),
            rates=rates_service.rates_on(on, config["EXCHANGE_RATES"]),
            notice_days=int(config.get("NOTICE_DAYS", 30)),
            steep_rise_percent=Decimal(str(config.get("STEEP_RISE_PERCENT", 50))),
            peer_min_count=int(config.get("PEER_MIN_COUNT", 5)),
            peer_ratio=float(config.get("PEER_OUTLIER_RATIO", 3.0)),
            peer_mad_z=float(config.get("PEER_OUTLIER_MAD_Z", 5.0)),
            vague=tuple(config.get("VAGUE_DISCLOSURE", ())),
            vague_pattern=re.compile("|".join(map(re.escape, config.get("VAGUE_DISCLOSURE", ()))), re.I)
            if config.get("VAGUE_DISCLOSURE") else None,
            charged_by={code: set(ft.charged_by_list) for code, ft in catalog.items()},
            abolished_names={ft.name_zh: code for code, ft in catalog.items() if ft.abolished_from},
        )

    def applicable(self, entry: Entry) -> list[tuple[Rule, Callable]]:
        """The item rules that could find something on this entry: a shortcut only (each rule
        still checks everything itself), so that a full scan calls few functions per item."""
        key = (entry.fee_type_code, entry.prev_amount is not None, entry.name_zh in self.abolished_names,
               entry.firm_category)
        found = self._applicable.get(key)
        if found is None:
            code = entry.fee_type_code
            fee_type = self.catalog.get(code)
            policy = self.policy.kinds(code)
            possible = {"INCOMPLETE"}
            if entry.firm_category not in self.charged_by.get(code, ()):
                possible.add("MISPLACED")
            if (key[2] or fee_type is None or fee_type.abolished_from or not self.charged_by.get(code)
                    or policy & {"abolish", "merge"}):
                possible.add("ABOLISHED")
            if "cap" in policy:
                possible.add("OVER_CAP")
            if "official_rate" in policy:
                possible.add("MARKUP")
            if key[1]:
                possible |= {"NO_NOTICE", "STEEP_RISE"}
            found = self._applicable[key] = [pair for pair in ITEM_RULES if pair[0].code in possible]
        return found

    def judging_date(self, entry: Entry) -> date:
        """An item is judged by the policy in force on its effective date or, once that has
        passed, today: it is still being charged, so a cap set since applies to it too."""
        return max(entry.effective_from, self.on)

    def cny(self, amount: Decimal | None, currency: str) -> Decimal | None:
        return None if amount is None else self.rates.to_cny(amount, currency)


def _money(value: Decimal | None) -> str:
    return "" if value is None else str(value.quantize(CENT))


def _ratio(a: Decimal, b: Decimal) -> str:
    return str((a / b).quantize(CENT)) if b else ""


# --- the rules judged on one item ----------------------------------------------------------

@_rule("ABOLISHED", "high", N_("%(fee_type)s (%(name)s) is charged from %(effective_from)s although it "
                               "is not permitted from %(abolished_from)s: %(basis)s."))
def abolished(entry: Entry, ctx: Context) -> dict | None:
    """A fee type abolished or merged by policy (catalog or notice), one no firm category may
    charge, or an abolished fee's old name kept on another type."""
    on = ctx.judging_date(entry)
    fee_type = ctx.catalog.get(entry.fee_type_code)
    evidence = {"fee_type": entry.fee_type_code, "name": entry.name_zh,
                "effective_from": entry.effective_from.isoformat()}
    if fee_type is not None and fee_type.abolished_from and fee_type.abolished_from <= on:
        return {**evidence, "abolished_from": fee_type.abolished_from.isoformat(),
                "replaced_by": fee_type.replaced_by, "basis": fee_type.policy_note or "catalog",
                "source": "catalog"}
    notice = ctx.policy.in_force(("abolish", "merge"), entry, on)
    if notice is not None:
        return {**evidence, "abolished_from": notice.effective_from.isoformat(),
                "replaced_by": notice.replaced_by, "basis": notice.reference or notice.kind,
                "source": "notice", "notice_id": notice.id}
    if fee_type is not None and not ctx.charged_by.get(entry.fee_type_code):
        return {**evidence, "abolished_from": "—", "basis": "no firm category may charge it",
                "source": "catalog"}
    old_code = ctx.abolished_names.get(entry.name_zh)
    if old_code and old_code != entry.fee_type_code:
        old = ctx.catalog[old_code]
        if old.abolished_from <= on:
            return {**evidence, "abolished_from": old.abolished_from.isoformat(), "old_fee_type": old_code,
                    "basis": f"charged under the old name of {old_code}", "source": "name"}
    return None


def _against_notice(kind: str, entry: Entry, ctx: Context):
    """(notice, judging date, amount in CNY, the notice's amount in CNY) for the notice of this
    kind in force for the entry, or None when there is none or a currency has no rate."""
    on = ctx.judging_date(entry)
    notice = ctx.policy.in_force((kind,), entry, on)
    if notice is None or notice.amount is None:
        return None
    amount, limit = ctx.cny(entry.amount, entry.currency), ctx.cny(notice.amount, notice.currency)
    if amount is None or limit is None:
        return None
    return notice, on, amount, limit


@_rule("OVER_CAP", "high", N_("%(amount)s %(currency)s is above the cap of %(cap)s %(cap_currency)s in "
                              "force on %(judged_on)s (%(reference)s): %(ratio)s times the cap."))
def over_cap(entry: Entry, ctx: Context) -> dict | None:
    found = _against_notice("cap", entry, ctx)
    if found is None:
        return None
    notice, on, amount, cap = found
    if amount <= cap:
        return None
    return {"amount": _money(entry.amount), "currency": entry.currency, "amount_cny": _money(amount),
            "cap": _money(notice.amount), "cap_currency": notice.currency, "cap_cny": _money(cap),
            "cap_from": notice.effective_from.isoformat(), "judged_on": on.isoformat(),
            "reference": notice.reference or "—", "notice_id": notice.id, "ratio": _ratio(amount, cap)}


@_rule("MARKUP", "high", N_("A pass-through government fee collected at %(amount)s %(currency)s instead of "
                            "the official %(official)s %(official_currency)s (%(reference)s): "
                            "%(difference)s CNY difference."))
def markup(entry: Entry, ctx: Context) -> dict | None:
    found = _against_notice("official_rate", entry, ctx)
    if found is None:
        return None
    notice, _on, amount, official = found
    if abs(amount - official) < CENT:
        return None
    return {"amount": _money(entry.amount), "currency": entry.currency, "official": _money(notice.amount),
            "official_currency": notice.currency, "difference": _money(amount - official),
            "ratio": _ratio(amount, official), "official_from": notice.effective_from.isoformat(),
            "reference": notice.reference or "—", "notice_id": notice.id}


@_rule("NO_NOTICE", "medium", N_("A rise from %(old)s to %(new)s %(currency)s was published on "
                                 "%(published_on)s, effective %(effective_from)s: %(notice_days)s days' "
                                 "notice, %(required_days)s required."), event=True)
def no_notice(entry: Entry, ctx: Context) -> dict | None:
    if entry.prev_amount is None:
        return None
    old, new = ctx.cny(entry.prev_amount, entry.prev_currency), ctx.cny(entry.amount, entry.currency)
    if old is None or new is None or new <= old:
        return None
    published_on = (entry.published_at + LOCAL_OFFSET).date()
    days = (entry.effective_from - published_on).days
    if days >= ctx.notice_days:
        return None
    return {"old": _money(entry.prev_amount), "new": _money(entry.amount), "currency": entry.currency,
            "published_on": published_on.isoformat(), "effective_from": entry.effective_from.isoformat(),
            "notice_days": days, "required_days": ctx.notice_days, "previous_version_id": entry.prev_version_id}


@_rule("STEEP_RISE", "medium", N_("Raised from %(old)s to %(new)s %(currency)s (+%(percent)s%%), more "
                                  "than the %(threshold)s%% a single change may add."), event=True)
def steep_rise(entry: Entry, ctx: Context) -> dict | None:
    if entry.prev_amount is None:
        return None
    old, new = ctx.cny(entry.prev_amount, entry.prev_currency), ctx.cny(entry.amount, entry.currency)
    if not old or new is None:
        return None
    percent = (new / old - 1) * 100
    if percent <= ctx.steep_rise_percent:
        return None
    return {"old": _money(entry.prev_amount), "new": _money(entry.amount), "currency": entry.currency,
            "percent": str(percent.quantize(Decimal("0.1"))), "threshold": str(ctx.steep_rise_percent),
            "previous_version_id": entry.prev_version_id}


@_rule("MISPLACED", "medium", N_("%(fee_type)s (%(name)s) is charged by a firm of the category %(category)s; "
                                 "only these categories may charge it: %(charged_by)s."))
def misplaced(entry: Entry, ctx: Context) -> dict | None:
    allowed = ctx.charged_by.get(entry.fee_type_code)
    fee_type = ctx.catalog.get(entry.fee_type_code)
    # A type nobody may charge, or an abolished one, is ABOLISHED's finding, not this one's.
    if not allowed or fee_type is None or fee_type.abolished_from or entry.firm_category in allowed:
        return None
    return {"category": entry.firm_category, "fee_type": entry.fee_type_code, "name": entry.name_zh,
            "charged_by": ", ".join(sorted(allowed))}


@_rule("INCOMPLETE", "low", N_("Disclosure incomplete or vague: %(fields)s."))
def incomplete(entry: Entry, ctx: Context) -> dict | None:
    problems = []
    if entry.pricing_basis in GOVERNMENT_PRICED and not (entry.legal_basis or "").strip():
        problems.append("legal_basis: missing for a government-priced fee")
    content = (entry.service_content or "").strip()
    if not content:
        problems.append("service_content: missing")
    elif ctx.vague_pattern is not None and ctx.vague_pattern.search(content):
        problems.append(f"service_content: vague ({content[:40]})")
    elif _RANGE.search(content) or _RANGE.search(entry.name_zh or ""):
        problems.append("a range instead of an amount")
    if not entry.unit:
        problems.append("unit: missing")
    if not problems:
        return None
    return {"fields": "; ".join(problems), "missing": [p.split(":")[0] for p in problems]}


# --- rules judged against other items ------------------------------------------------------

@dataclass(frozen=True)
class PeerStats:
    count: int
    median: float
    mad: float
    q1: float
    q3: float


def peer_stats(values: list[float]) -> PeerStats:
    ordered = sorted(values)
    median = statistics.median(ordered)
    mad = statistics.median([abs(v - median) for v in ordered])
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = median
    return PeerStats(len(ordered), median, mad, q1, q3)


@_rule("PEER_OUTLIER", "medium", N_("%(amount_cny)s CNY is %(ratio)s times the median of %(median)s CNY "
                                    "charged by %(peers)s peers at %(port)s (robust z %(z)s)."),
       per_item=False)
def peer_outlier(entry: Entry, amount_cny: float, groups: list[tuple[str, PeerStats]], ctx: Context) -> dict | None:
    """Far above peers in at least one of its ports; evidence from the port where it is worst.

    Both tests must hold: a multiple of the median (what a shipper notices) and a robust z
    (median and MAD, so the outliers themselves do not widen the yardstick). A group where
    everyone charges the same (MAD 0) is judged by the multiple alone.
    """
    worst = None
    for port, stats in groups:
        if stats.count - 1 < ctx.peer_min_count or stats.median <= 0:
            continue
        ratio = amount_cny / stats.median
        spread = MAD_SCALE * stats.mad
        z = (amount_cny - stats.median) / spread if spread else float("inf")
        if ratio >= ctx.peer_ratio and z >= ctx.peer_mad_z and (worst is None or ratio > worst[0]):
            worst = (ratio, z, port, stats)
    if worst is None:
        return None
    ratio, z, port, stats = worst
    return {"amount": _money(entry.amount), "currency": entry.currency, "amount_cny": f"{amount_cny:.2f}",
            "median": f"{stats.median:.2f}", "mad": f"{stats.mad:.2f}", "q1": f"{stats.q1:.2f}",
            "q3": f"{stats.q3:.2f}", "ratio": f"{ratio:.2f}", "z": "∞" if z == float("inf") else f"{z:.1f}",
            "peers": stats.count - 1, "port": port, "fee_type": entry.fee_type_code, "unit": entry.unit,
            "container_size": entry.container_size, "cargo_scope": entry.cargo_scope}


@_rule("DUPLICATE", "medium", N_("%(name)s (%(fee_code)s) duplicates %(other_name)s (%(other_fee_code)s): "
                                 "both %(fee_type)s %(unit)s for the same scope, at %(amount)s and "
                                 "%(other_amount)s %(currency)s."), per_item=False)
def duplicate(entry: Entry, other: Entry, ctx: Context) -> dict | None:
    """`entry` (the later item) charges again what `other` already charges: same firm, fee
    type, unit and scope, at a port both apply to — one fee split into two names."""
    if entry.duplicate_key != other.duplicate_key or not set(entry.port_list) & set(other.port_list):
        return None
    return {"name": entry.name_zh, "fee_code": entry.fee_code, "other_item_id": other.item_id,
            "other_version_id": other.version_id, "other_name": other.name_zh, "other_fee_code": other.fee_code,
            "fee_type": entry.fee_type_code, "unit": entry.unit, "container_size": entry.container_size,
            "amount": _money(entry.amount), "other_amount": _money(other.amount), "currency": entry.currency,
            "ports": ";".join(sorted(set(entry.port_list) & set(other.port_list)))}


@dataclass(frozen=True)
class Charge:
    """A charge a shipper reports (a complaint, an invoice line)."""
    fee_name: str
    fee_type_code: str
    amount: Decimal
    currency: str
    charged_on: date


@_rule("UNDISCLOSED", "high",
       N_("%(fee_name)s charged at %(amount)s %(currency)s on %(charged_on)s is not in the firm's published "
          "schedule on that date."), per_item=False,
       above=N_("%(fee_name)s charged at %(amount)s %(currency)s on %(charged_on)s is above the published "
                "%(published)s %(published_currency)s."))
def undisclosed(charge: Charge, schedule: list[Entry], ctx: Context) -> dict | None:
    """`schedule`: the firm's versions in force on the charge date. A charge matches an item
    of its fee type (or, unmapped, of its exact name); above the highest such item (the
    most generous reading, whatever the size) is above the schedule."""
    evidence = {"fee_name": charge.fee_name, "fee_type": charge.fee_type_code, "amount": _money(charge.amount),
                "currency": charge.currency, "charged_on": charge.charged_on.isoformat()}
    matches = [e for e in schedule if (charge.fee_type_code and e.fee_type_code == charge.fee_type_code)
               or e.name_zh == charge.fee_name]
    if not matches:
        return {**evidence, "variant": ""}
    charged = ctx.cny(charge.amount, charge.currency)
    best = max(matches, key=lambda e: ctx.cny(e.amount, e.currency) or Decimal(0))
    published = ctx.cny(best.amount, best.currency)
    if charged is None or published is None or charged <= published:
        return None
    return {**evidence, "variant": "above", "published": _money(best.amount),
            "published_currency": best.currency, "item_id": best.item_id, "version_id": best.version_id,
            "difference_cny": _money(charged - published)}


def local_date(moment: datetime) -> date:
    return (moment + LOCAL_OFFSET).date()
