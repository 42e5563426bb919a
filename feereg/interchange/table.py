"""What a reader makes of an uploaded file: a header and rows of raw cells, or a refusal."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from ..exports.csv import restore
from .columns import canonical_header


class FileRefused(ValueError):
    """The file cannot be read; says why. `errors` holds (row, column, reason) for each
    cell at fault where the refusal is about cells (formulas in a workbook), else nothing."""

    def __init__(self, message, errors: list[tuple[int, str, str]] | None = None):
        super().__init__(str(message))
        self.message = message
        self.errors = errors or []


@dataclass
class Table:
    header: list[str]
    #: (row number as a person sees it in the file, {column: raw value})
    rows: list[tuple[int, dict]]
    encoding: str = ""
    notes: list = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)


def start_table(header_cells, encoding: str) -> Table:
    header = [canonical_header(cell) for cell in header_cells]
    while header and not header[-1]:
        header.pop()
    if not any(header):
        raise FileRefused(_l("The first row must be the header row with the column names."))
    seen = set()
    for name in header:
        if name and name in seen:
            raise FileRefused(_l("The column %(name)s appears twice in the header.", name=name))
        seen.add(name)
    return Table(header=header, rows=[], encoding=encoding)


def row_dict(header: list[str], cells) -> dict:
    row = {}
    for index, name in enumerate(header):
        if name:
            # A cell our own export neutralised ("'=..." for "=...") reads back as written.
            row[name] = restore(cells[index]) if index < len(cells) else ""
    extra = [c for c in cells[len(header):] if str(c or "").strip()]
    if extra:
        row["__extra__"] = extra
    return row
