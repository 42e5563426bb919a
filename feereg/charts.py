"""Geometry for the server-rendered SVG charts (the CSP forbids scripts and inline styles,
so the template draws plain SVG elements with classes; this module only does the sums).

A strip plot with a box: one dot per amount, a box from the lower to the upper
quartile, a thick line at the median and a dashed one at p90 — a shipper sees at a
glance where one firm sits against the rest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

#: Above this many amounts, dots are sampled evenly by rank (the box and lines use all).
MAX_DOTS = 200
LANES = 7


@dataclass
class Dot:
    x: float
    y: float
    value: Decimal
    label: str
    marked: bool = False


@dataclass
class StripChart:
    width: int
    height: int
    left: float
    right: float
    axis_y: float
    top: float
    bottom: float
    dots: list[Dot] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    min_x: float = 0.0
    q1_x: float = 0.0
    median_x: float = 0.0
    q3_x: float = 0.0
    p90_x: float = 0.0
    max_x: float = 0.0
    sampled: bool = False

    @property
    def box_width(self) -> float:
        return round(max(self.q3_x - self.q1_x, 1.0), 1)


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A step of 1, 2, 2.5 or 5 × 10^k giving about `target_ticks` intervals."""
    if span <= 0:
        return 1.0
    raw = span / target_ticks
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 2.5, 5, 10):
        if raw <= multiple * power:
            return multiple * power
    return 10 * power


def _format_tick(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def strip_chart(points: list[tuple[Decimal, str, bool]], stats, width: int = 720,
                height: int = 170, sampled: bool = False) -> StripChart | None:
    """points: (amount in CNY, label, marked) for each row, or `sampled` by rank from more
    rows; stats: compare.Stats of all the rows."""
    if not points or stats is None:
        return None
    left, right = 24.0, width - 24.0
    # room above the box for the median's label, below it for the axis and tick labels
    top, bottom, axis_y = 28.0, height - 44.0, height - 30.0
    low, high = float(stats.min), float(stats.max)
    if high == low:  # one value, or all equal: give the axis some width around it
        pad = max(abs(high) * 0.1, 1.0)
        low, high = max(0.0, low - pad), high + pad
    step = nice_step(high - low)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step

    def x_of(value) -> float:
        return round(left + (float(value) - start) / (end - start) * (right - left), 1)

    chart = StripChart(width, height, left, right, axis_y, top, bottom, sampled=sampled)
    ticks, tick = [], start
    while tick <= end + step / 2:
        ticks.append((x_of(tick), _format_tick(tick)))
        tick += step
    chart.ticks = ticks
    ordered = sorted(points, key=lambda p: p[0])
    if len(ordered) > MAX_DOTS:
        # keep the marked dot(s), sample the rest evenly by rank
        stride = len(ordered) / MAX_DOTS
        keep = {int(i * stride) for i in range(MAX_DOTS)}
        ordered = [p for i, p in enumerate(ordered) if i in keep or p[2]]
        chart.sampled = True
    lane_height = (bottom - top) / LANES
    for i, (value, text, marked) in enumerate(ordered):
        lane = (i * 3) % LANES  # spread neighbours across lanes so equal amounts stay visible
        y = round(top + lane_height * (lane + 0.5), 1)
        chart.dots.append(Dot(x_of(value), y, value, text, marked))
    chart.min_x, chart.q1_x, chart.median_x = x_of(stats.min), x_of(stats.q1), x_of(stats.median)
    chart.q3_x, chart.p90_x, chart.max_x = x_of(stats.q3), x_of(stats.p90), x_of(stats.max)
    return chart


# --- bars: counts per period (the regulator's weekly trend) -----------------------------------

@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass
class BarChart:
    width: int
    height: int
    baseline: float
    top_value: int
    bars: list[Bar] = field(default_factory=list)


def bar_chart(values: list[tuple[str, int]], width: int = 720, height: int = 150) -> BarChart | None:
    """One bar per (label, count), drawn as SVG rects with attributes (no style): the tallest
    bar fills the height; a zero shows as no bar but keeps its slot and label."""
    if not values:
        return None
    top, baseline = 18.0, height - 24.0
    top_value = max(n for _, n in values) or 1
    slot = (width - 8) / len(values)
    chart = BarChart(width, height, baseline, top_value)
    for i, (label, n) in enumerate(values):
        h = round((baseline - top) * n / top_value, 1)
        chart.bars.append(Bar(round(4 + i * slot + slot * 0.15, 1), round(baseline - h, 1),
                              round(slot * 0.7, 1), h, n, label))
    return chart
