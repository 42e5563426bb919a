"""Exchange rates to CNY, dated, from configuration (EXCHANGE_RATES).

Comparisons and quotes rank firms in CNY, converting with the rate in force on
the date being looked at: a comparison as of 2025-03-01 uses the 2025 rates, not
today's, so a past ranking does not drift with the currency.

Configuration is a list of {"from": "YYYY-MM-DD", "rates": {"USD": "7.12", ...}}
(CNY per one unit). The older single-dict form {"as_of": "...", "USD": "7.12"} —
still what an existing FEEREG_EXCHANGE_RATES override may hold — reads as one
entry. Before the first entry's date the first entry applies (a ranking needs some
rate; the page says which one was used).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from flask import current_app

CNY = "CNY"
CENT = Decimal("0.01")


class RateConfigError(ValueError):
    """EXCHANGE_RATES is malformed: an operator's mistake, reported with what is wrong."""


@dataclass(frozen=True)
class RateTable:
    """The rates in force on one date."""

    effective_from: date | None
    rates: dict[str, Decimal]

    def rate(self, currency: str) -> Decimal | None:
        if currency == CNY:
            return Decimal(1)
        return self.rates.get(currency)

    def to_cny(self, amount: Decimal, currency: str) -> Decimal | None:
        """The amount in CNY to the cent, or None when no rate is configured for it."""
        rate = self.rate(currency)
        return None if rate is None else (amount * rate).quantize(CENT)

    @property
    def foreign(self) -> list[tuple[str, Decimal]]:
        """The non-CNY rates, for showing which rates a page used."""
        return sorted((c, r) for c, r in self.rates.items() if c != CNY)


def _decimal(value, where: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise RateConfigError(f"EXCHANGE_RATES: {where}: {value!r} is not a number") from None
    if not result.is_finite() or result <= 0:
        raise RateConfigError(f"EXCHANGE_RATES: {where}: {value!r} must be a positive number")
    return result


def _date(value, where: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RateConfigError(f"EXCHANGE_RATES: {where}: {value!r} is not a YYYY-MM-DD date") from None


def parse_rates(config) -> list[RateTable]:
    """Every dated entry, oldest first."""
    if isinstance(config, dict):  # the single-dict form
        rest = {k: v for k, v in config.items() if k not in ("as_of", "from")}
        config = [{"from": config.get("from") or config.get("as_of"), "rates": rest}]
    if not isinstance(config, list) or not config:
        raise RateConfigError("EXCHANGE_RATES must be a non-empty list of {from, rates}")
    tables = []
    for n, entry in enumerate(config, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("rates"), dict):
            raise RateConfigError(f"EXCHANGE_RATES: entry {n} needs a 'rates' mapping")
        start = _date(entry.get("from"), f"entry {n} 'from'")
        rates = {str(c).upper(): _decimal(r, f"entry {n} {c}") for c, r in entry["rates"].items()}
        rates[CNY] = Decimal(1)
        tables.append(RateTable(start, rates))
    return sorted(tables, key=lambda t: t.effective_from or date.min)


def rates_on(on: date, config=None) -> RateTable:
    """The rate table in force on `on` (configuration from the app unless given)."""
    tables = parse_rates(current_app.config["EXCHANGE_RATES"] if config is None else config)
    chosen = tables[0]
    for table in tables:
        if table.effective_from is None or table.effective_from <= on:
            chosen = table
    return chosen
