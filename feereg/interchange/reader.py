"""Reading an uploaded CSV or XLSX into rows, safely.

Nothing here trusts the file: the encoding is detected strictly (UTF-8, then
GB18030, which covers GBK, never a lossy fallback, and a file mixing the two is
refused rather than half turned to mojibake), an XLSX is checked as a zip before
openpyxl sees it (feereg/interchange/workbook.py), and row counts are capped before
the rows are held in memory.
"""
from __future__ import annotations

import csv
import io

from flask_babel import lazy_gettext as _l

from .table import FileRefused, Table, row_dict, start_table
from .workbook import read_xlsx

__all__ = ["FileRefused", "Table", "decode_text", "read_table"]

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_table(filename: str, content: bytes, max_rows: int, max_unpacked: int) -> Table:
    name = (filename or "").lower()
    if content[:8] == OLE_MAGIC and name.endswith((".xlsx", ".xlsm")):
        # Excel wraps a password-protected workbook in the old compound format.
        raise FileRefused(_l("The workbook is password-protected (or an old .xls file renamed); save it "
                             "as .xlsx without a password and upload again."))
    if content[:4] == ZIP_MAGIC or name.endswith((".xlsx", ".xlsm")):
        return read_xlsx(content, max_rows, max_unpacked)
    if content[:8] == OLE_MAGIC or name.endswith(".xls"):
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
            if encoding.startswith("utf-8"):
                _refuse_mixed(content)
            continue
    raise FileRefused(_l("The file is neither UTF-8 nor GBK/GB18030 text. Save it as "
                         "“CSV UTF-8” in Excel, or upload the .xlsx file."))


def _refuse_mixed(content: bytes) -> None:
    """A file whose lines are partly UTF-8 and partly not (rows pasted from a GBK file into
    a UTF-8 one) would decode as GB18030 with every UTF-8 line turned to mojibake, silently:
    name a line of each kind instead."""
    utf8_line = other_line = 0
    for number, line in enumerate(content.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_line = utf8_line or number
        except UnicodeDecodeError:
            other_line = other_line or number
        if utf8_line and other_line:
            raise FileRefused(_l("Line %(line)s is not UTF-8 although line %(other)s is: the file mixes two "
                                 "text encodings (UTF-8 and perhaps GBK). Save the whole file again as “CSV UTF-8”.",
                                 line=other_line, other=utf8_line))


def _read_csv(content: bytes, max_rows: int) -> Table:
    text, encoding = decode_text(content)
    if text.startswith("\ufeff"):
        text = text[1:]
    nul = text.find("\x00")
    if nul >= 0:
        raise FileRefused(_l("Line %(line)s contains a NUL character: this is not a text file (or it is UTF-16 "
                             "without its byte order mark).", line=text.count("\n", 0, nul) + 1))
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    table = None
    # Rows are numbered as a spreadsheet shows them: a cell with line breaks is still one row.
    line = 0
    try:
        for record in reader:
            line += 1
            if table is None:
                table = start_table(record, encoding)
                continue
            if not any(cell.strip() for cell in record):
                continue
            if len(table.rows) >= max_rows:
                raise FileRefused(_l("The file has more than %(n)s rows; split it into smaller files.", n=max_rows))
            table.rows.append((line, row_dict(table.header, record)))
    except csv.Error as exc:
        line += 1  # the row that failed
        if "field larger than field limit" in str(exc):
            message = _l("Row %(row)s has a cell longer than %(n)s characters.", row=line, n=csv.field_size_limit())
        else:
            message = _l("Row %(row)s cannot be read as CSV: %(reason)s", row=line, reason=str(exc))
        raise FileRefused(message, [(line, "", str(message))]) from None
    if table is None:
        raise FileRefused(_l("The file is empty."))
    if encoding == "gb18030":
        table.notes.append(_l("The file was read as GBK/GB18030 (Chinese Excel's default)."))
    return table
