"""CSV for spreadsheets: UTF-8 with a BOM (Excel on a Chinese Windows otherwise reads it as
GBK and shows mojibake) and formula injection neutralised.

A cell a spreadsheet would read as a formula — one starting with = + - @, or a tab or
carriage return that some spreadsheets skip before looking — is prefixed with an
apostrophe, so "=HYPERLINK(...)" typed into a complaint arrives as text, never as a live
formula on a regulator's machine. Numbers are written by the caller as numbers (Decimal,
int): only strings are neutralised, so a negative amount stays a number.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Iterable, Iterator, Sequence

BOM = "\ufeff"
#: What makes a spreadsheet evaluate a cell (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAYBE_FORMULA = frozenset(FORMULA_START) | {"'"}


def neutralise(value) -> str | int | float | Decimal:
    """A cell's value as written: strings that could run as formulas get a leading quote."""
    if type(value) is str:  # most cells: decided on the first character, without copying
        if value[:1] in _MAYBE_FORMULA and value.lstrip("'").startswith(FORMULA_START):
            return "'" + value
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    # Apostrophes already in front of a formula get one more, so `restore` can tell the
    # writer's own leading apostrophe ("'=x" stays "'=x" through a round trip) from ours.
    if text.lstrip("'").startswith(FORMULA_START):
        return "'" + text
    return text


def restore(value):
    """Undo `neutralise` on a text cell read back from one of our files, so an exported
    schedule re-imports unchanged: "'=x" was "=x", "''=x" was "'=x". Only a quote before
    (more quotes and) a formula start is ours; any other leading quote is the writer's own
    text and stays. feereg/verify_bulk.py reads the bulk download's CSV the same way."""
    if isinstance(value, str) and value.startswith("'") and value.lstrip("'").startswith(FORMULA_START):
        return value[1:]
    return value


def iter_csv(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """The file as text chunks (a BOM, the header, then one chunk per row): stream it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([neutralise(h) for h in header])
    yield BOM + flush()
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
        yield flush()


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    return "".join(iter_csv(header, rows)).encode("utf-8")
