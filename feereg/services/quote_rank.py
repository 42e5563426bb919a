"""Which firms a quote page shows: every candidate firm ranked on the registry snapshot.

A quote at a busy port has tens of thousands of firms that could serve it. This module
ranks them all on the snapshot's columns (snapshot.py) with the rules of quote_rules —
choose() item by item and size by size, price() unit by unit — vectorised, and returns
per category the firm count and the versions of the firms that can be on the page. Only those
are then read from the database and itemised exactly, in Decimal, by quote.py.

Here totals are floats of the unrounded amounts, while the rules round each line to the
cent (in its currency, then in CNY), so an exact total lies within a bound of the float:
half a cent per line plus half a cent times the rate, per line (a tiered per-day item
has a line per band), plus a hair for float error. Beyond the page the ranking keeps
every firm whose lowest possible total does not exceed the highest possible total of a
firm on the page: a firm it leaves out is beaten by a full page of firms whatever the
rounding, so the page is exactly what ranking every firm in Python gives.
"""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from . import quote_rules as rules
from .snapshot import Snapshot

HALF_CENT = 0.005
#: Float error allowance per firm total (amounts are far below the point where it matters).
FLOAT_EPSILON = 1e-6


@dataclass
class Ranking:
    #: category → how many firms could serve the shipment.
    counts: dict[str, int] = field(default_factory=dict)
    #: Snapshot positions of the versions that apply, of the firms that can be on the page.
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The ids of those firms (sorted), and per category what another firm must beat to
    #: join them (None: the category's every firm is on the page): see _still_ranked.
    shown: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cuts: dict[str, "_Cut | None"] = field(default_factory=dict)


@dataclass(frozen=True)
class _Cut:
    """Who joins a category's page: a firm of a better tier (complete, where the last
    firm within the page's count is incomplete), or of its tier with a lowest possible
    total within `reach`, the highest possible total up to that last firm."""

    last_incomplete: bool
    reach: float


@dataclass
class FirmScores:
    """What ranking needs of each candidate firm, and the rows that price them. A firm's
    figures depend on its own rows and details only, which is what lets them be reused."""

    #: Per firm: id, category code, float total, its rounding bound, incomplete?
    firms: np.ndarray
    category: np.ndarray
    score: np.ndarray
    slack: np.ndarray
    incomplete: np.ndarray
    #: The candidate rows (snapshot positions) and the firm of each.
    rows: np.ndarray
    row_firm: np.ndarray

    @classmethod
    def empty(cls) -> "FirmScores":
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none.astype(np.int16), none.astype(float), none.astype(float), none.astype(bool), none,
                   none)

    def replacing(self, firms: np.ndarray, fresh: "FirmScores") -> "FirmScores":
        """These scores with those of `firms` (a bool per firm id, every id of these scores
        included) taken from `fresh`."""
        keep, keep_rows = ~firms[self.firms], ~firms[self.row_firm]
        return FirmScores(*(np.concatenate((getattr(self, name)[keep], getattr(fresh, name)))
                            for name in ("firms", "category", "score", "slack", "incomplete")),
                          np.concatenate((self.rows[keep_rows], fresh.rows)),
                          np.concatenate((self.row_firm[keep_rows], fresh.row_firm)))


def rank_firms(snap: Snapshot, shipment: rules.Shipment, on: date, table,
               expected: dict[str, list[rules.Expect]], per_category: int, reuse: bool = True) -> Ranking:
    """Every firm that could serve the shipment, ranked per category; see the module's docstring.

    reuse: start from the figures of the same shipment on an older snapshot of this
    process, computing again only the firms changed since (the same ranking, cheaper)."""
    categories = [c for c, found in expected.items() if found]
    if reuse:
        return _reused_ranking(snap, shipment, on, table, expected, categories, per_category)
    return _select(snap, firm_scores(snap, shipment, on, table, expected, categories), categories, per_category)


def firm_scores(snap: Snapshot, shipment: rules.Shipment, on: date, table, expected: dict[str, list[rules.Expect]],
                categories: list[str], only: np.ndarray | None = None) -> FirmScores:
    """The figures of every candidate firm, or of the firms `only` marks (a bool per firm id)."""
    vocab, v = snap.vocab, snap.versions
    fee_types = sorted({e.fee_type for c in categories for e in expected[c]})
    rows = snap.rows(on, fee_types=fee_types, categories=categories, port=shipment.port, active_only=True,
                     firm_serves_port=True, directions=("", shipment.direction), trades=("", shipment.trade),
                     scopes=("", shipment.cargo_scope), firms=only)
    if not len(rows):
        return FirmScores.empty()
    firm = v.firm_id[rows]
    category = snap.firms.category[firm]
    fee_type = v.fee_type[rows]
    # Which (category, fee type) pairs take part, and which of them are required.
    n_types = len(vocab.fee_type.texts)
    wanted = np.zeros((len(vocab.category.texts), n_types), dtype=bool)
    required = np.zeros_like(wanted)
    # A required fee no firm publishes still counts: every firm of the category lacks it.
    required_count = np.zeros(len(vocab.category.texts), dtype=np.int64)
    for c in categories:
        row = vocab.category.find(c)
        if row < 0:  # no firm of the category at all
            continue
        required_count[row] = len({e.fee_type for e in expected[c] if e.required})
        for expect in expected[c]:
            code = vocab.fee_type.find(expect.fee_type)
            if code >= 0:
                wanted[row, code] = True
                required[row, code] |= expect.required
    keep = wanted[category, fee_type]
    rows, firm, category, fee_type = rows[keep], firm[keep], category[keep], fee_type[keep]
    if not len(rows):
        return FirmScores.empty()

    cny_cents, converted = snap.cny_cents(rows, table)
    rate = _rates(snap, rows, table)
    unit = v.unit[rows]
    is_box = vocab.unit.table(rules.CONTAINER_UNITS)[unit]
    size_code = v.size[rows]
    any_size = size_code == vocab.size.find("")
    # (firm, fee type): the group choose() works on; firms are contiguous in its order.
    group = firm.astype(np.int64) * n_types + fee_type

    # Slots: a per-box row once for each shipment size it fits (slot k), any other row once
    # for the whole shipment (slot `whole`), and a per-box row that fits no size once as
    # a marker (slot `marker`, never chosen): its group still prices per box, as choose() does.
    sizes = list(shipment.sizes)
    whole, marker = len(sizes), len(sizes) + 1
    slot_rows, slot_index, slot_rank = [], [], []
    fits_any = np.zeros(len(rows), dtype=bool)
    for k, size in enumerate(sizes):
        exact = size_code == vocab.size.find(size)
        fallback = size_code == vocab.size.find(rules.SIZE_FALLBACK.get(size, size))
        fits = is_box & (any_size | exact | fallback)
        fits_any |= fits
        at = np.flatnonzero(fits)
        slot_rows.append(at)
        slot_index.append(np.full(len(at), k))
        slot_rank.append(np.where(any_size[at], 0, np.where(exact[at], 2, 1)))
    for wanted_rows, code in ((~is_box & (any_size | vocab.size.table(sizes)[size_code]), whole),
                              (is_box & ~fits_any, marker)):
        at = np.flatnonzero(wanted_rows)
        slot_rows.append(at)
        slot_index.append(np.full(len(at), code))
        slot_rank.append(np.zeros(len(at), dtype=np.int64))
    r = np.concatenate(slot_rows)
    slot = np.concatenate(slot_index)
    if not len(r):
        return FirmScores.empty()

    # choose(): per (group, slot) the most specific, then the dearer in CNY (none and 0
    # lowest, as there), then the newer id. Sorted by (group, slot, specificity) packed in
    # one integer; within a run of equal keys the best (amount, id), packed likewise, is
    # its maximum — cheaper than sorting by amount too.
    at = rows[r]
    preference = (np.concatenate(slot_rank) * 8 + (v.scope[at] != vocab.scope.find("")) * 4
                  + (v.direction[at] == vocab.direction.find(shipment.direction)) * 2
                  + (v.trade[at] == vocab.trade.find(shipment.trade)))
    place = (group[r] * (marker + 1) + slot) * 32 + (31 - preference)
    order = np.argsort(place, kind="stable")
    place, slot = place[order], slot[order]
    ids = v.id[rows[r[order]]]
    if len(ids) and ids.max() >= 2 ** 24:  # only the ids' order matters
        ids = np.unique(ids, return_inverse=True)[1]
    amount = np.minimum(np.where(converted & (cny_cents > 0), cny_cents, -100)[r][order] + 100, 2 ** 38)
    tie = amount * 2 ** 24 + ids
    runs = np.flatnonzero(np.concatenate(([True], place[1:] != place[:-1])))
    lengths = np.diff(np.concatenate((runs, [len(place)])))
    best = tie == np.repeat(np.maximum.reduceat(tie, runs), lengths)
    by_slot = place[runs] // 32
    first_run = np.concatenate(([True], by_slot[1:] != by_slot[:-1]))
    first = best & np.repeat(first_run, lengths)
    sorted_group = group[r[order]]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = sorted_group[1:] != sorted_group[:-1]
    segment = np.cumsum(starts) - 1
    has_box = np.logical_or.reduceat(is_box[r[order]], np.flatnonzero(starts))
    picked = first & ((slot < whole) | ((slot == whole) & ~has_box[segment]))
    chosen = r[order][picked]
    chosen_slot = np.where(slot[picked] == whole, len(sizes), slot[picked])

    line, slack, unconverted = _price(snap, rows, chosen, chosen_slot, shipment, rate)
    chosen_segment = segment[picked]
    n_segments = int(segment[-1]) + 1
    per_group_slots = np.bincount(chosen_segment, minlength=n_segments)
    group_total = np.bincount(chosen_segment, weights=line, minlength=n_segments)
    group_slack = np.bincount(chosen_segment, weights=slack, minlength=n_segments)
    group_unconverted = np.bincount(chosen_segment, weights=unconverted, minlength=n_segments) > 0
    present = per_group_slots > 0
    covered = np.where(has_box, per_group_slots == len(sizes), True)

    # Per firm: groups are in (firm, fee type) order, so a firm's groups are contiguous.
    groups = sorted_group[starts][present]
    group_firm, group_type = groups // n_types, groups % n_types
    group_category = snap.firms.category[group_firm]
    firm_starts = np.ones(len(groups), dtype=bool)
    firm_starts[1:] = group_firm[1:] != group_firm[:-1]
    firm_of = np.cumsum(firm_starts) - 1
    firms = group_firm[firm_starts]
    score = np.bincount(firm_of, weights=group_total[present], minlength=len(firms))
    firm_slack = np.bincount(firm_of, weights=group_slack[present], minlength=len(firms)) + FLOAT_EPSILON
    firm_unconverted = np.bincount(firm_of, weights=group_unconverted[present], minlength=len(firms)) > 0
    firm_covered = np.bincount(firm_of, weights=(required[group_category, group_type] & covered[present]),
                               minlength=len(firms))
    firm_category = snap.firms.category[firms]
    incomplete = firm_unconverted | (firm_covered < required_count[firm_category])
    return FirmScores(firms, firm_category, score, firm_slack, incomplete, rows, firm)


def _select(snap: Snapshot, scores: FirmScores, categories: list[str], per_category: int) -> Ranking:
    """Per category the firm count, and the rows of the firms that can be on the page."""
    vocab = snap.vocab
    firms, firm_category, score = scores.firms, scores.category, scores.score
    firm_slack, incomplete = scores.slack, scores.incomplete
    ranking = Ranking()
    shown = []
    for c in categories:
        in_category = np.flatnonzero(firm_category == vocab.category.find(c))
        if not len(in_category):
            continue
        ordered = in_category[np.lexsort((firms[in_category], score[in_category], incomplete[in_category]))]
        keep = np.zeros(len(ordered), dtype=bool)
        keep[:per_category] = True
        ranking.cuts[c] = None
        if len(ordered) > per_category:
            cut = per_category - 1
            cut_incomplete = incomplete[ordered[cut]]
            same = np.flatnonzero(incomplete[ordered] == cut_incomplete)
            # The highest possible total among the firms up to the cut, in the cut's tier.
            reach = np.max((score + firm_slack)[ordered[same[same <= cut]]])
            keep |= incomplete[ordered] < cut_incomplete
            keep |= (incomplete[ordered] == cut_incomplete) & (score[ordered] - firm_slack[ordered] <= reach)
            ranking.cuts[c] = _Cut(bool(cut_incomplete), float(reach))
        ranking.counts[c] = len(ordered)
        shown.append(firms[ordered[keep]])
    if shown:
        on_page = np.zeros(len(snap.firms.known), dtype=bool)
        ranking.shown = np.sort(np.concatenate(shown)).astype(np.int64)
        on_page[ranking.shown] = True
        ranking.positions = np.sort(scores.rows[on_page[scores.row_firm]])
    # Held per process and handed to every later quote of the shipment: read-only.
    ranking.positions.flags.writeable = ranking.shown.flags.writeable = False
    return ranking


def _still_ranked(held: Ranking, old: FirmScores, fresh: FirmScores, changed: np.ndarray,
                  snap: Snapshot) -> Ranking | None:
    """`held` brought up to date after the firms `changed` (ids) were scored again as
    `fresh`, or None when selecting again is needed: when one of them was on the page, or
    now gets there (within a category's cut). Otherwise only the counts move: the firms
    on the page, their rows and every cut stay as they were."""
    if np.isin(changed, held.shown).any():
        return None
    texts = snap.vocab.category.texts
    counts = dict(held.counts)
    for code in old.category[np.isin(old.firms, changed)].tolist():
        counts[texts[code]] -= 1
    for code, score, slack, incomplete in zip(fresh.category.tolist(), fresh.score.tolist(),
                                              fresh.slack.tolist(), fresh.incomplete.tolist()):
        category = texts[code]
        cut = held.cuts.get(category)
        if cut is None:  # a category shown whole (or not shown at all) gains a firm
            return None
        # Ordered before the last firm on the page means within its reach too.
        if incomplete < cut.last_incomplete or (incomplete == cut.last_incomplete and score - slack <= cut.reach):
            return None
        counts[category] += 1
    return Ranking(counts, held.positions, held.shown, held.cuts)


# --- reuse across snapshots -----------------------------------------------------------------

#: Shipments whose figures a process keeps (a few MB each at a million items).
REUSED_AT_MOST = 32
_reused: "OrderedDict[tuple, tuple]" = OrderedDict()
_reused_lock = threading.Lock()
#: How firm-by-firm updates of a held selection went (read by the tests).
_reuse_counts: Counter = Counter()


def _reuse_key(shipment: rules.Shipment, on: date, table, expected: dict) -> tuple:
    return (shipment.port, shipment.direction, tuple(sorted(shipment.containers.items())), shipment.bills,
            shipment.storage_days, tuple(sorted(shipment.services)), shipment.cargo_scope, shipment.trade, on,
            table.effective_from, tuple(sorted(table.rates.items())),
            tuple((c, tuple(found)) for c, found in sorted(expected.items())))


def _reused_ranking(snap: Snapshot, shipment, on, table, expected, categories, per_category: int) -> Ranking:
    """A publish changes a firm or two; the figures of the tens of thousands of others
    that a shipment's ranking needs (~100 ms to compute at a million items) stay as they
    were on the snapshot they were computed on, and so, mostly, does the selection (a firm
    far down the list changed: only a count moves)."""
    key = _reuse_key(shipment, on, table, expected)
    with _reused_lock:
        held = _reused.get(key)
        if held is not None:
            _reused.move_to_end(key)
    changed = None
    if held is not None:
        lineage, generation, scores, rankings = held
        if lineage is snap.lineage and generation <= snap.generation:
            changed = snap.lineage.changed_since(generation, snap.generation)
    ranking = None
    if changed is None:
        scores = firm_scores(snap, shipment, on, table, expected, categories)
        rankings = {}
    elif changed:
        marked = np.zeros(len(snap.firms.known), dtype=bool)
        marked[[f for f in changed if f < len(marked)]] = True
        fresh = firm_scores(snap, shipment, on, table, expected, categories, only=marked)
        if per_category in rankings:
            ranking = _still_ranked(rankings[per_category], scores, fresh, np.flatnonzero(marked), snap)
            _reuse_counts["selection kept" if ranking is not None else "selected again"] += 1
        scores = scores.replacing(marked, fresh)
        rankings = {}
    else:
        ranking = rankings.get(per_category)
    if ranking is None:
        ranking = _select(snap, scores, categories, per_category)
    rankings = {**rankings, per_category: ranking}
    with _reused_lock:
        _reused[key] = (snap.lineage, snap.generation, scores, rankings)
        _reused.move_to_end(key)
        while len(_reused) > REUSED_AT_MOST:
            _reused.popitem(last=False)
    return ranking


def _rates(snap: Snapshot, rows: np.ndarray, table) -> np.ndarray:
    """The rate to CNY per row as a float, NaN where none is configured."""
    codes = snap.versions.currency[rows]
    by_code = np.array([float(table.rate(c)) if table.rate(c) is not None else np.nan
                        for c in snap.vocab.currency.texts] or [np.nan])
    return by_code[codes]


def _price(snap: Snapshot, rows, chosen, slot, shipment: rules.Shipment, rate):
    """(line total in CNY, its rounding bound, unconverted) per chosen row, as price() counts."""
    v, vocab = snap.versions, snap.vocab
    sizes = list(shipment.sizes)
    # slot len(sizes): the whole shipment (units not counted per box)
    boxes = np.array([shipment.containers[s] for s in sizes] + [0], dtype=float)[slot]
    teu = np.array([float(rules.TEU[s] * shipment.containers[s]) for s in sizes] + [0.0])[slot]
    at = rows[chosen]
    amount = v.cents[at] / 100.0
    unit = v.unit[at]
    units = vocab.unit.find
    tiers_code = v.tiers[at]
    days = shipment.storage_days
    # Tier texts are many in a big registry: cost and bands only for those chosen here.
    used = np.flatnonzero(np.bincount(tiers_code, minlength=len(vocab.tiers.texts)))
    tier_cost = np.zeros(len(vocab.tiers.texts))
    bands = np.ones(len(vocab.tiers.texts), dtype=np.int64)
    for code in used.tolist():
        text = vocab.tiers.texts[code]
        if text:
            bands[code] = text.count(";") + 1
            if days > 0:
                tier_cost[code] = float(rules.tier_day_cost(text, days))
    if days > 0:
        tiered = tiers_code != vocab.tiers.find("")
        day_cost = np.where(tiered, tier_cost[tiers_code], amount * days)
    else:
        day_cost = np.zeros(len(chosen))
    quantity_amount = np.select(
        [unit == units("per_container"), unit == units("per_teu"), unit == units("per_bl"),
         unit == units("per_shipment"), unit == units("per_declaration"), unit == units("per_container_day"),
         unit == units("per_day")],
        [boxes * amount, teu * amount, amount * shipment.bills, amount, amount * shipment.declarations,
         boxes * day_cost, day_cost], default=0.0)
    line_rate = rate[chosen]
    priced = vocab.unit.table(rules.PRICED_UNITS)[unit]
    unconverted = priced & np.isnan(line_rate)
    lines = np.where(vocab.unit.table(("per_container_day", "per_day"))[unit], bands[tiers_code], 1)
    with np.errstate(invalid="ignore"):
        line = np.where(np.isnan(line_rate), 0.0, quantity_amount * np.nan_to_num(line_rate))
        slack = np.where(priced & ~np.isnan(line_rate), lines * (np.nan_to_num(line_rate) * HALF_CENT + HALF_CENT),
                         0.0)
    return line, slack, unconverted
