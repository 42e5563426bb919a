"""Reading an uploaded CSV or XLSX into rows, safely.

Nothing here trusts the file: the encoding is detected strictly (UTF-8, then
GB18030, which covers GBK, never a lossy fallback), an XLSX is checked as a zip
before openpyxl sees it (no formula evaluation, no zip bombs), and row counts are
capped before the rows are held in memory.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import lazy_gettext as _l

from ..exports.csv import restore
from .columns import canonical_header


class FileRefused(ValueError):
    """The file as a whole cannot be read; says why."""


@dataclass
class Table:
    header: list[str]
    #: (row number as a person sees it in the file, {column: raw value})
    rows: list[tuple[int, dict]]
    encoding: str = ""
    notes: list = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)


def read_table(filename: str, content: bytes, max_rows: int, max_unpacked: int) -> Table:
    name = (filename or "").lower()
    if content[:4] == b"PK\x03\x04" or name.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(content, max_rows, max_unpacked)
    if content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.endswith(".xls"):
        raise FileRefused(_l("This is an old Excel .xls file; save it as .xlsx or CSV and upload again."))
    if b"\x00" in content[:4096] and not content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused(_l("This file is not a CSV or XLSX file."))
    return _read_csv(content, max_rows)


def decode_text(content: bytes) -> tuple[str, str]:
    """Decode strictly; return (text, encoding name). Raise FileRefused if nothing fits."""
    if content.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif content.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8", "gb18030"]
    for encoding in encodings:
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise FileRefused(_l("The file is neither UTF-8 nor GBK/GB18030 text. Save it as "
                         "“CSV UTF-8” in Excel, or upload the .xlsx file."))


def _read_csv(content: bytes, max_rows: int) -> Table:
    text, encoding = decode_text(content)
    if text.startswith("\ufeff"):
        text = text[1:]
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    table = None
    try:
        for record in reader:
            line = reader.line_num
            if table is None:
                table = _start_table(record, encoding)
                continue
            if not any(cell.strip() for cell in record):
                continue
            if len(table.rows) >= max_rows:
                raise FileRefused(_l("The file has more than %(n)s rows; split it into smaller files.", n=max_rows))
            table.rows.append((line, _row_dict(table.header, record)))
    except csv.Error as exc:
        raise FileRefused(_l("Row %(row)s cannot be read as CSV: %(reason)s", row=reader.line_num, reason=str(exc))) from None
    if table is None:
        raise FileRefused(_l("The file is empty."))
    if encoding == "gb18030":
        table.notes.append(_l("The file was read as GBK/GB18030 (Chinese Excel's default)."))
    return table


def _start_table(header_cells, encoding: str) -> Table:
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


def _row_dict(header: list[str], cells) -> dict:
    row = {}
    for index, name in enumerate(header):
        if name:
            # A cell our own export neutralised ("'=..." for "=...") reads back as written.
            row[name] = restore(cells[index]) if index < len(cells) else ""
    extra = [c for c in cells[len(header):] if str(c or "").strip()]
    if extra:
        row["__extra__"] = extra
    return row


def _read_xlsx(content: bytes, max_rows: int, max_unpacked: int) -> Table:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise FileRefused(_l("The file is not a valid XLSX workbook.")) from None
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if unpacked > max_unpacked or unpacked / packed > 200:
        raise FileRefused(_l("The workbook inflates to an unreasonable size; refused as unsafe."))
    if not any(m.filename == "xl/workbook.xml" for m in members):
        raise FileRefused(_l("The file is not a valid XLSX workbook."))
    import openpyxl  # imported here: only uploads of workbooks pay for it

    try:
        # read_only streams rows; data_only reads cached values and never evaluates formulas.
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on hostile input
        raise FileRefused(_l("The workbook cannot be read; save it again in Excel and retry.")) from None
    try:
        sheet = book.worksheets[0]
        table = None
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = ["" if v is None else _cell(v) for v in values]
            if table is None:
                if not any(str(c).strip() for c in cells):
                    continue
                table = _start_table([str(c) for c in cells], "xlsx")
                continue
            if not any(str(c).strip() for c in cells):
                continue
            if len(table.rows) >= max_rows:
                raise FileRefused(_l("The file has more than %(n)s rows; split it into smaller files.", n=max_rows))
            table.rows.append((number, _row_dict(table.header, cells)))
    finally:
        book.close()
    if table is None:
        raise FileRefused(_l("The workbook's first sheet is empty."))
    return table


def _cell(value):
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, (date, int, float)):
        return value
    return str(value)
