"""The rows of each tabular export (CSV and XLSX write the same rows): a firm's schedule,
a comparison, search results. Headers are English keys: the files are data, read by
programs as well as people. The audit report's flags are audit_report.CSV_HEADER/csv_rows.

A schedule is written in the interchange columns (feereg/interchange/columns.py), so a
firm can download its schedule, edit it and import it again: an unchanged row re-imports
as unchanged.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ..interchange.columns import FEE_ITEM_COLUMNS, FEE_ITEM_OPTIONAL

SCHEDULE_HEADER = FEE_ITEM_COLUMNS + FEE_ITEM_OPTIONAL

COMPARISON_HEADER = ("rank", "credit_code", "firm_zh", "firm_en", "fee_type", "name_zh", "name_en", "unit",
                     "container_size", "cargo_scope", "trade", "direction", "amount", "currency", "amount_cny",
                     "effective_from", "item_id", "on")

SEARCH_HEADER = ("credit_code", "firm_zh", "firm_en", "fee_type", "fee_code", "name_zh", "name_en", "unit",
                 "container_size", "cargo_scope", "amount", "currency", "pricing_basis", "effective_from", "ports",
                 "item_id")


def schedule_row(credit_code: str, v) -> tuple:
    """One version as an interchange row; the values are the ones the importer reads back
    (codes, not labels; amounts as numbers; tax as yes/no)."""
    values = {
        "credit_code": credit_code, "fee_code": v.fee_code, "fee_type": v.fee_type_code, "name_zh": v.name_zh,
        "name_en": v.name_en, "unit": v.unit, "container_size": v.container_size, "cargo_scope": v.cargo_scope,
        "trade": v.trade, "direction": v.direction, "amount": v.amount, "currency": v.currency, "tiers": v.tiers,
        "pricing_basis": v.pricing_basis, "service_content": v.service_content, "legal_basis": v.legal_basis,
        "ports": v.ports, "effective_from": v.effective_from, "tax_included": "yes" if v.tax_included else "no",
        "tax_rate": v.tax_rate,
    }
    return tuple(values[name] for name in SCHEDULE_HEADER)


def schedule_rows(firm, versions: Iterable) -> Iterator[tuple]:
    return (schedule_row(firm.credit_code, v) for v in versions)


def comparison_rows(comparison) -> Iterator[tuple]:
    # The rows are in_force.VERSION_COLUMNS, not whole versions: only those fields exist.
    for rank, row in enumerate(comparison.rows, start=1):
        v, firm = row.version, row.firm
        yield (rank, firm.credit_code, firm.name_zh, firm.name_en, v.fee_type_code, v.name_zh, v.name_en, v.unit,
               v.container_size, v.cargo_scope, v.trade, v.direction, v.amount, v.currency, row.amount_cny,
               v.effective_from, v.item_id, comparison.on)


def search_rows(results) -> Iterator[tuple]:
    for result in results:
        v = result.version
        yield (v.firm.credit_code, v.firm.name_zh, v.firm.name_en, v.fee_type_code, v.fee_code, v.name_zh,
               v.name_en, v.unit, v.container_size, v.cargo_scope, v.amount, v.currency, v.pricing_basis,
               v.effective_from, v.ports, v.item_id)
