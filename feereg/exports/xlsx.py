"""XLSX for spreadsheets: the same rows as the CSV writer, the same formula neutralising.

openpyxl's write-only mode streams rows to a temporary file instead of holding a cell
object per value, so a 50,000-row export costs a few MB, not hundreds. A string starting
with "=" would be written as a live formula by openpyxl itself; csv.neutralise turns it
into text first. Numbers stay numbers and dates stay dates, so they sort and sum.
"""
from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable, Sequence

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from .csv import neutralise

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell_value(value):
    if isinstance(value, (date, datetime)):
        return value
    if value is None or isinstance(value, (bool, int, float, Decimal)):
        return neutralise(value)
    # Text is cleaned first and neutralised last, so "\x07=cmd" cannot end as a live "=cmd":
    # XML 1.0 cannot carry most control characters (openpyxl refuses the whole file), and
    # turns a carriage return into a line feed on reading, so the cell's line break is written.
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return neutralise(ILLEGAL_CHARACTERS_RE.sub("", text))


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence], sheet_title: str = "feereg") -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=sheet_title[:31])
    sheet.append([cell_value(h) for h in header])
    for row in rows:
        sheet.append([cell_value(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
