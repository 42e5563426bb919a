"""Reading the first sheet of an uploaded XLSX, after checking the zip it is.

An XLSX is a zip of XML parts, and every part of it is the uploader's: the checks run on
what the zip's directory declares, before anything is inflated (zipfile never inflates
a member beyond its declared size, so the declared sizes bound the work):

- at most MAX_MEMBERS parts, at most `max_unpacked` bytes in all, and no part larger than
  a megabyte inflating more than MAX_RATIO times (zip bombs, flat or spread over parts);
- no part with a document type declaration: OOXML never has one, and a DTD is what
  entity expansion ("billion laughs") and external entities need. openpyxl parses with the
  standard library's expat (defusedxml is not installed); expat 2.4+ limits expansion
  itself and ElementTree fetches no external entity, and this check refuses the file
  before either matters;
- the sheet is read with openpyxl in read-only mode, its declared dimensions ignored (a
  one-cell sheet claiming A1:XFD1048576 would otherwise be padded to a billion cells),
  at most MAX_COLUMNS columns and MAX_BLANK_ROWS blank rows;
- links to other workbooks are not loaded, and formulas are refused (see _formula_error).
"""
from __future__ import annotations

import io
import xml.parsers.expat
import zipfile
from datetime import date, datetime

from flask_babel import lazy_gettext as _l

from .table import FileRefused, Table, row_dict, start_table

#: A workbook a person saved has a few dozen parts; thousands are an attack on the reader.
MAX_MEMBERS = 1000
#: Deflate reaches about 1000:1 on repeated bytes; a real sheet's XML inflates 10-20 times.
MAX_RATIO = 200
#: Parts smaller than this cannot hurt, whatever their ratio (styles, themes).
RATIO_FLOOR = 1 << 20
#: The interchange files have 20 columns; a row reaching column XFD is not one of them.
MAX_COLUMNS = 100
#: Blank rows are skipped, but each costs a step: a cell at row 1,048,576 must not cost a million.
MAX_BLANK_ROWS = 10_000
#: Formula cells named in one refusal; more are counted.
MAX_CELL_ERRORS = 20
#: How much of a part is inflated looking for its root element (past a long prolog: refused).
PROLOG_LIMIT = 256 * 1024


class _RootReached(Exception):
    pass


def read_xlsx(content: bytes, max_rows: int, max_unpacked: int) -> Table:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise FileRefused(_l("The file is not a valid XLSX workbook.")) from None
    _check_archive(members, max_unpacked)
    try:
        for member in members:
            _check_prolog(archive, member)
    except FileRefused:
        raise
    except Exception:  # noqa: BLE001 - a corrupt member: zlib, CRC, truncation errors
        raise FileRefused(_l("The workbook cannot be read; save it again in Excel and retry.")) from None
    import openpyxl  # imported here: only uploads of workbooks pay for it

    try:
        # data_only=False: a formula cell reads as its formula, never as the value cached
        # beside it by whatever wrote the file; keep_links=False: external workbooks unread.
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=False, keep_links=False)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on hostile input
        raise FileRefused(_l("The workbook cannot be read; save it again in Excel and retry.")) from None
    try:
        return _read_first_sheet(book, max_rows)
    except FileRefused:
        raise
    except Exception:  # noqa: BLE001 - cells are parsed lazily: a bad one fails mid-iteration
        raise FileRefused(_l("The workbook cannot be read; save it again in Excel and retry.")) from None
    finally:
        book.close()


def _check_archive(members: list[zipfile.ZipInfo], max_unpacked: int) -> None:
    if len(members) > MAX_MEMBERS:
        raise FileRefused(_l("The workbook has %(n)s parts, more than a spreadsheet has; refused as unsafe.",
                             n=len(members)))
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    bomb = unpacked > max_unpacked or (unpacked > RATIO_FLOOR and unpacked / packed > MAX_RATIO) or any(
        m.file_size > RATIO_FLOOR and m.file_size / max(1, m.compress_size) > MAX_RATIO for m in members)
    if bomb:
        raise FileRefused(_l("The workbook inflates to an unreasonable size; refused as unsafe."))
    if any(m.flag_bits & 0x1 for m in members):
        raise FileRefused(_l("The workbook is encrypted or password-protected; save it without a password."))
    if not any(m.filename == "xl/workbook.xml" for m in members):
        raise FileRefused(_l("The file is not a valid XLSX workbook."))


def _check_prolog(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Refuse a part that declares a document type. Only the prolog is parsed: once the
    root element starts, no declaration can follow. Parts that are not XML (images) fail
    to parse at once and are left alone: openpyxl cannot parse them either."""
    if member.is_dir() or member.file_size == 0:
        return
    parser = xml.parsers.expat.ParserCreate()

    def declared(*_args):
        raise FileRefused(_l("The workbook part %(part)s declares a document type or entities, or has a long "
                             "preamble, which a spreadsheet never does; refused as unsafe.",
                             part=member.filename[:100]))

    def root(*_args):
        raise _RootReached

    parser.StartDoctypeDeclHandler = declared
    parser.EntityDeclHandler = declared
    parser.StartElementHandler = root
    read = 0
    with archive.open(member) as stream:
        try:
            while True:
                chunk = stream.read(64 * 1024)
                read += len(chunk)
                parser.Parse(chunk, not chunk)
                if not chunk:
                    return
                if read >= PROLOG_LIMIT:
                    declared()
        except _RootReached:
            return
        except xml.parsers.expat.ExpatError:
            return


def _read_first_sheet(book, max_rows: int) -> Table:
    if not book.worksheets:
        raise FileRefused(_l("The workbook has no worksheet."))
    sheet = book.worksheets[0]
    sheet.reset_dimensions()
    table = None
    blank = 0
    formulas: list[tuple[int, str, str]] = []
    formula_count = 0
    # One column past the limit: a header that wide is refused, a row that wide has extra cells.
    for number, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS + 1), start=1):
        values = []
        for cell in cells:
            if getattr(cell, "data_type", None) == "f":
                formula_count += 1
                if len(formulas) < MAX_CELL_ERRORS:
                    formulas.append(_formula_error(cell, number, table))
                values.append("")
            else:
                values.append("" if cell.value is None else _cell(cell.value))
        if not any(str(v).strip() for v in values):
            blank += 1
            if blank > MAX_BLANK_ROWS:
                raise FileRefused(_l("The first sheet has more than %(n)s empty rows; delete them and retry.",
                                     n=MAX_BLANK_ROWS))
            continue
        if table is None:
            if len(values) > MAX_COLUMNS and str(values[MAX_COLUMNS]).strip():
                raise FileRefused(_l("The header row has more than %(n)s columns.", n=MAX_COLUMNS))
            table = start_table([str(v) for v in values], "xlsx")
            continue
        if len(table.rows) >= max_rows:
            raise FileRefused(_l("The file has more than %(n)s rows; split it into smaller files.", n=max_rows))
        table.rows.append((number, row_dict(table.header, values)))
    if formulas:
        if formula_count > len(formulas):
            formulas.append((0, "", str(_l("… and %(n)s more cells with formulas.", n=formula_count - len(formulas)))))
        raise FileRefused(_l("The workbook has formulas; nothing was imported."), formulas)
    if table is None:
        raise FileRefused(_l("The workbook's first sheet is empty."))
    return table


def _formula_error(cell, number: int, table: Table | None) -> tuple[int, str, str]:
    """A formula cell is refused, not read. Its cached value is whatever the program that
    wrote the file put beside the formula (a script can put anything there, and Excel
    shows the recalculated one), and its text ("=B5*1.06") is not a fee: published fees
    are a legal record, so the file must carry the amounts as the publisher sees them.
    The error names the cell so it can be pasted back as a value."""
    column = getattr(cell, "column", None) or 0
    letter = getattr(cell, "column_letter", "") or ""
    name = ""
    if table is not None and 0 < column <= len(table.header):
        name = table.header[column - 1]
    formula = str(getattr(cell.value, "text", cell.value) or "")[:60]
    return (number, name or letter, str(_l(
        "cell %(cell)s holds a formula (%(formula)s): copy the cells and paste them as values",
        cell=f"{letter}{number}", formula=formula)))


def _cell(value):
    if isinstance(value, datetime):
        return value.date() if value.time() == datetime.min.time() else value
    if isinstance(value, (date, int, float)):
        return value
    return str(value)
