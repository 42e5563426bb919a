"""Bulk import: whole-file validation, row-level errors, all-or-nothing, no-op re-import."""
import csv
import io

import openpyxl
import pytest
from sqlalchemy import func, select

from feereg.models import FeeItem, FeeItemVersion
from feereg.services import history, imports, registry
from feereg.services.errors import InvalidInput

from .factories import make_firm, make_user

pytestmark = pytest.mark.usefixtures("english")

HEADER = ["credit_code", "fee_code", "fee_type", "name_zh", "name_en", "unit", "container_size", "cargo_scope",
          "trade", "direction", "amount", "currency", "tiers", "pricing_basis", "service_content", "legal_basis",
          "ports", "effective_from"]


def row(code, **kw):
    base = {"credit_code": code, "fee_code": "", "fee_type": "", "name_zh": "文件费", "name_en": "", "unit": "",
            "container_size": "", "cargo_scope": "", "trade": "", "direction": "", "amount": "450",
            "currency": "CNY", "tiers": "", "pricing_basis": "", "service_content": "签发提单", "legal_basis": "",
            "ports": "YANTIAN", "effective_from": ""}
    base.update(kw)
    return base


def csv_bytes(rows, encoding="utf-8-sig", header=HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for r in rows:
        sheet.append([r[h] for h in HEADER])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture
def firm(app):
    return make_firm(category="shipping_agent")


@pytest.fixture
def publisher(firm):
    return make_user("publisher", firm)


def standard_rows(code):
    return [
        row(code, name_zh="文件费"),
        row(code, name_zh="设备交接单费", amount="60", container_size="20"),
        row(code, name_zh="码头操作费", fee_code="THC-40", amount="1250", container_size="40HQ"),
        row(code, fee_type="DET", name_zh="滞箱费", amount="0", tiers="free:7;8-14:85;15-21:170;22-:340"),
    ]


def do_import(session, content, actor, filename="fees.csv"):
    preview = imports.preview_file(session, filename, content, actor)
    if preview.ok:
        imports.apply_preview(session, preview, actor)
        session.commit()
    return preview


def version_count(session):
    return session.scalar(select(func.count()).select_from(FeeItemVersion))


def test_clean_file_imports_every_row_in_one_chain_extension(session, firm, publisher):
    preview = do_import(session, csv_bytes(standard_rows(firm.credit_code)), publisher)
    assert preview.ok, [str(e) for e in preview.errors]
    assert preview.counts == {"new": 4, "changed": 0, "unchanged": 0}
    schedule = history.schedule_on(session, firm, registry.today())
    assert sorted(v.fee_type_code for v in schedule) == ["DET", "DOC", "EIR", "THC"]
    det = next(v for v in schedule if v.fee_type_code == "DET")
    assert det.unit == "per_container_day" and det.tiers == "free:7;8-14:85;15-21:170;22-:340"
    assert not history.verify_firm(session, firm)


def test_reimporting_an_unchanged_file_creates_no_version(session, firm, publisher):
    content = csv_bytes(standard_rows(firm.credit_code))
    do_import(session, content, publisher)
    before = version_count(session)
    preview = do_import(session, content, publisher)
    assert preview.counts == {"new": 0, "changed": 0, "unchanged": 4}
    assert version_count(session) == before


def test_changed_row_is_previewed_with_its_diff(session, firm, publisher):
    rows = standard_rows(firm.credit_code)
    do_import(session, csv_bytes(rows), publisher)
    rows[2]["amount"] = "1300"
    preview = imports.preview_file(session, "fees.csv", csv_bytes(rows), publisher)
    changed = [r for r in preview.rows if r.status == "changed"]
    assert len(changed) == 1 and changed[0].row == 4
    assert {k: (str(a), str(b)) for k, (a, b) in changed[0].diff.items()} == {"amount": ("1250.00", "1300.00")}


def test_one_bad_row_writes_nothing_and_every_error_names_row_and_column(session, firm, publisher):
    rows = standard_rows(firm.credit_code) + [
        row(firm.credit_code, name_zh="港外神秘费", amount="100"),
        row(firm.credit_code, name_zh="铅封费", amount="详见附件"),
        row(firm.credit_code, name_zh="铅封费", fee_code="S2", amount="12.345", container_size="53"),
        row(firm.credit_code, name_zh="电放费", ports="YANTIAN;NOWHERE", effective_from="2026-13-45"),
    ]
    preview = do_import(session, csv_bytes(rows), publisher)
    found = {(e.row, e.column) for e in preview.errors}
    assert {(6, "fee_type"), (7, "amount"), (8, "amount"), (8, "container_size"), (9, "ports"),
            (9, "effective_from")} <= found
    assert all(e.row >= 2 for e in preview.errors)
    unknown = next(e for e in preview.errors if e.row == 6)
    assert "港外神秘费" in unknown.message
    with pytest.raises(InvalidInput):
        imports.apply_preview(session, preview, publisher)
    assert session.scalar(select(func.count()).select_from(FeeItem)) == 0
    assert version_count(session) == 0


def test_unknown_fee_name_suggests_close_catalog_names(session, firm, publisher):
    preview = imports.preview_file(session, "f.csv", csv_bytes([row(firm.credit_code, name_zh="单证服务")]), publisher)
    message = preview.errors[0].message
    assert "DOC" in message
    # The unknown type is the one error: no echo about the unit or pricing it would have given.
    assert [(e.row, e.column) for e in preview.errors] == [(2, "fee_type")]


@pytest.mark.parametrize("name", ["文件费", "单证费", "DOC", "doc fee"])
def test_aliases_map_to_the_catalog_type(session, firm, publisher, name):
    preview = imports.preview_file(session, "f.csv", csv_bytes([row(firm.credit_code, name_zh=name)]), publisher)
    assert preview.ok, [str(e) for e in preview.errors]
    assert preview.rows[0].values["fee_type_code"] == "DOC"


def test_a_firms_own_spelling_maps_through_a_contained_catalog_name(session, firm, publisher):
    preview = imports.preview_file(session, "f.csv", csv_bytes([row(firm.credit_code, name_zh="港外堆场吊箱费")]),
                                   publisher)
    assert preview.ok
    assert preview.rows[0].values["fee_type_code"] == "LOLO"
    assert preview.rows[0].mapped_via == "吊箱费"


def test_rows_of_another_firm_are_refused(session, firm, publisher):
    other = make_firm()
    preview = do_import(session, csv_bytes([row(firm.credit_code), row(other.credit_code)]), publisher)
    assert [(e.row, e.column) for e in preview.errors] == [(3, "credit_code")]
    assert version_count(session) == 0


def test_invalid_credit_code_check_digit_is_reported(session, firm, publisher):
    bad = firm.credit_code[:17] + ("0" if firm.credit_code[17] != "0" else "1")
    preview = imports.preview_file(session, "f.csv", csv_bytes([row(bad)]), publisher)
    assert preview.errors[0].column == "credit_code" and "check digit" in preview.errors[0].message


def test_duplicate_rows_in_one_file_are_an_error(session, firm, publisher):
    preview = imports.preview_file(session, "f.csv", csv_bytes([row(firm.credit_code), row(firm.credit_code)]),
                                   publisher)
    assert [(e.row, e.column) for e in preview.errors] == [(3, "name_zh")]
    assert "row 2" in preview.errors[0].message or "2" in preview.errors[0].message


def test_gbk_file_is_read_as_chinese_not_mojibake(session, firm, publisher):
    content = csv_bytes(standard_rows(firm.credit_code), encoding="gbk")
    preview = do_import(session, content, publisher)
    assert preview.ok, [str(e) for e in preview.errors]
    assert any("GB" in str(note) for note in preview.notes)
    names = {v.name_zh for v in history.schedule_on(session, firm, registry.today())}
    assert {"文件费", "设备交接单费", "码头操作费", "滞箱费"} == names


def test_undecodable_bytes_are_refused_with_a_clear_message(session, firm, publisher):
    content = csv_bytes([row(firm.credit_code)], encoding="utf-8") + b"\x81\x20\xff\xfe"
    preview = imports.preview_file(session, "f.csv", content, publisher)
    assert not preview.ok
    assert "UTF-8" in preview.errors[0].message and "GB" in preview.errors[0].message


def test_xlsx_imports_like_csv(session, firm, publisher):
    preview = do_import(session, xlsx_bytes(standard_rows(firm.credit_code)), publisher, "fees.xlsx")
    assert preview.ok, [str(e) for e in preview.errors]
    assert preview.counts["new"] == 4
    again = imports.preview_file(session, "fees.csv", csv_bytes(standard_rows(firm.credit_code)), publisher)
    assert again.counts == {"new": 0, "changed": 0, "unchanged": 4}


def test_garbage_pretending_to_be_xlsx_is_refused(session, firm, publisher):
    preview = imports.preview_file(session, "fees.xlsx", b"PK\x03\x04not really a zip", publisher)
    assert not preview.ok and preview.errors[0].row == 0


def test_zip_bomb_is_refused_before_parsing(app, session, firm, publisher):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<x/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (120 * 1024 * 1024))
    preview = imports.preview_file(session, "bomb.xlsx", out.getvalue(), publisher)
    assert not preview.ok and "unsafe" in preview.errors[0].message


def test_missing_required_column_is_reported_on_the_header_row(session, firm, publisher):
    header = [h for h in HEADER if h != "amount"]
    content = csv_bytes([row(firm.credit_code)], header=header)
    preview = imports.preview_file(session, "f.csv", content, publisher)
    assert [(e.row, e.column) for e in preview.errors] == [(1, "amount")]


def test_too_many_rows_is_refused(app, session, firm, publisher):
    app.config["IMPORT_MAX_ROWS"] = 3
    rows = [row(firm.credit_code, fee_code=f"F{i}") for i in range(4)]
    preview = imports.preview_file(session, "f.csv", csv_bytes(rows), publisher)
    assert not preview.ok and "3" in preview.errors[0].message


def test_past_effective_date_is_refused_for_a_change(session, firm, publisher):
    preview = imports.preview_file(session, "f.csv", csv_bytes([row(firm.credit_code, effective_from="2020-01-01")]),
                                   publisher)
    assert [(e.row, e.column) for e in preview.errors] == [(2, "effective_from")]


def test_chinese_headers_are_understood(session, firm, publisher):
    content = ("统一社会信用代码,收费项目,金额,港口\n" f"{firm.credit_code},铅封费,50,盐田\n").encode("utf-8")
    preview = imports.preview_file(session, "f.csv", content, publisher)
    assert preview.ok, [str(e) for e in preview.errors]
    assert preview.rows[0].values["fee_type_code"] == "SEAL"
    assert preview.rows[0].values["ports"] == "YANTIAN"


def test_errors_are_in_chinese_by_default(app, session, firm, publisher):
    from flask_babel import force_locale

    with force_locale("zh"):
        preview = imports.preview_file(session, "f.csv", csv_bytes([row(firm.credit_code, amount="详见附件")]),
                                       publisher)
    assert preview.errors[0].column == "amount" and "详见附件" in preview.errors[0].message
    assert "amount, not a reference" not in preview.errors[0].message


# --- hostile and malformed files: refused whole, with a clear reason, nothing written -----------

def rewrite_xlsx(content: bytes, changes: dict, extra: dict | None = None, compression=None) -> bytes:
    """The workbook with some parts replaced ({name: function(old bytes) -> new bytes}) or added."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression or zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, changes[info.filename](data) if info.filename in changes else data)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return out.getvalue()


SHEET = "xl/worksheets/sheet1.xml"


def refused(session, publisher, content, filename="fees.xlsx"):
    preview = imports.preview_file(session, filename, content, publisher)
    assert not preview.ok
    assert session.scalar(select(func.count()).select_from(FeeItem)) == 0
    return preview


def test_a_formula_cell_is_refused_by_cell_never_read_as_its_cached_value(session, firm, publisher):
    rows = standard_rows(firm.credit_code)
    rows[1]["amount"] = "=B3*1.06"
    rows[3]["name_zh"] = '=HYPERLINK("http://evil.example","滞箱费")'
    content = xlsx_bytes(rows)
    # Put a cached value beside the formula, as Excel would: it must not be published either.
    content = rewrite_xlsx(content, {SHEET: lambda xml: xml.replace(b"<f>B3*1.06</f><v />", b"<f>B3*1.06</f><v>60</v>")})
    preview = refused(session, publisher, content)
    assert [(e.row, e.column) for e in preview.errors] == [(3, "amount"), (5, "name_zh")]
    assert "K3" in preview.errors[0].message and "=B3*1.06" in preview.errors[0].message
    assert "D5" in preview.errors[1].message and "paste them as values" in preview.errors[1].message
    assert not preview.rows  # no row of a refused workbook is classified as new or unchanged


def test_many_formula_cells_are_named_up_to_a_limit_and_counted(session, firm, publisher):
    from feereg.interchange.workbook import MAX_CELL_ERRORS

    rows = [row(firm.credit_code, fee_code=f"F{i}", amount=f"={i}+1") for i in range(MAX_CELL_ERRORS + 5)]
    preview = refused(session, publisher, xlsx_bytes(rows))
    assert len(preview.errors) == MAX_CELL_ERRORS + 1
    assert {e.column for e in preview.errors[:-1]} == {"amount"}
    assert "5 more" in preview.errors[-1].message


@pytest.mark.parametrize("doctype", [
    # billion laughs: nine levels of ten, a billion copies of "lol" if expanded
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10) for n in range(1, 10))
    + b"]>",
    b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">',
])
@pytest.mark.parametrize("part", [SHEET, "xl/workbook.xml", "[Content_Types].xml"])
def test_xml_with_a_document_type_is_refused_before_openpyxl_parses_it(session, firm, publisher, doctype, part):
    def poison(xml: bytes) -> bytes:
        head, sep, rest = xml.partition(b"?>") if xml.startswith(b"<?xml") else (b"", b"", xml)
        return head + sep + doctype + rest.replace(b"<t>credit_code</t>", b"<t>&lol9;&xxe;</t>")

    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)), {part: poison})
    preview = refused(session, publisher, content)
    assert [(e.row, e.column) for e in preview.errors] == [(0, "")]
    assert part in preview.errors[0].message and "unsafe" in preview.errors[0].message


def test_a_bomb_part_hidden_among_incompressible_parts_is_refused(session, firm, publisher):
    """The whole archive's ratio looks ordinary (random padding); one part's does not."""
    import os
    import zipfile

    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)), {}, extra={
        "xl/media/padding.bin": os.urandom(2 * 1024 * 1024), "xl/sharedStrings.xml": b" " * (60 * 1024 * 1024)})
    archive = zipfile.ZipFile(io.BytesIO(content))
    total = sum(m.file_size for m in archive.infolist()) / sum(m.compress_size for m in archive.infolist())
    assert total < 200
    preview = refused(session, publisher, content)
    assert "unsafe" in preview.errors[0].message


def test_a_workbook_of_thousands_of_parts_is_refused(session, firm, publisher):
    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)), {},
                           extra={f"xl/media/p{n}.bin": b"x" for n in range(1001)})
    preview = refused(session, publisher, content)
    assert "1010 parts" in preview.errors[0].message


def test_a_sheet_claiming_a_billion_cells_is_read_as_the_cells_it_has(session, firm, publisher):
    """The dimension element is the writer's claim: padding rows to it would take hours."""
    import time

    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)), {SHEET: lambda xml: xml.replace(
        b"<sheetViews>", b'<dimension ref="A1:XFD1048576"/><sheetViews>')})
    started = time.process_time()
    preview = imports.preview_file(session, "fees.xlsx", content, publisher)
    assert time.process_time() - started < 5
    assert preview.ok, [str(e) for e in preview.errors]
    assert preview.counts["new"] == 4


def test_a_cell_a_million_rows_down_is_refused_not_walked_to(session, firm, publisher):
    import time

    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)),
                           {SHEET: lambda xml: xml.replace(b"</sheetData>", far)})
    started = time.process_time()
    preview = refused(session, publisher, content)
    assert time.process_time() - started < 5
    assert "empty rows" in preview.errors[0].message


@pytest.mark.parametrize("mangle,expected", [
    (lambda b: b[: len(b) // 2], "not a valid XLSX"),  # truncated: no central directory
    (lambda b: b"PK\x03\x04" + b"\x00" * 200, "not a valid XLSX"),
    (lambda b: "credit_code,amount\n".encode(), "not a valid XLSX"),  # a CSV named .xlsx
    (lambda b: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "password"),  # encrypted workbook
])
def test_malformed_workbooks_get_a_clear_error(session, firm, publisher, mangle, expected):
    preview = refused(session, publisher, mangle(xlsx_bytes(standard_rows(firm.credit_code))))
    assert [(e.row, e.column) for e in preview.errors] == [(0, "")]
    assert expected in preview.errors[0].message


def test_a_workbook_with_a_corrupt_part_is_refused_not_a_crash(session, firm, publisher):
    import zipfile

    content = bytearray(xlsx_bytes(standard_rows(firm.credit_code)))
    info = zipfile.ZipFile(io.BytesIO(bytes(content))).getinfo(SHEET)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    content[start + 10: start + 40] = b"\xff" * 30  # the sheet's deflate stream
    preview = refused(session, publisher, bytes(content))
    assert "cannot be read" in preview.errors[0].message


def test_a_workbook_without_sheets_is_refused(session, firm, publisher):
    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)), {
        "xl/workbook.xml": lambda xml: xml.replace(
            b'<sheet name="Sheet" sheetId="1" state="visible" r:id="rId1" />', b"")})
    preview = refused(session, publisher, content)
    assert "no worksheet" in preview.errors[0].message or "cannot be read" in preview.errors[0].message


def test_shared_string_index_out_of_range_is_refused_not_a_crash(session, firm, publisher):
    content = rewrite_xlsx(xlsx_bytes(standard_rows(firm.credit_code)), {
        SHEET: lambda xml: xml.replace(b'<c r="A2" t="inlineStr">', b'<c r="A2" t="s"><v>99999</v></c><c r="Z2" t="inlineStr">', 1)})
    preview = refused(session, publisher, content)
    assert "cannot be read" in preview.errors[0].message


def test_csv_with_a_nul_byte_names_its_line(session, firm, publisher):
    rows = [row(firm.credit_code, fee_code=f"F{i}") for i in range(60)] + [row(firm.credit_code, name_zh="铅\x00封费")]
    content = csv_bytes(rows)
    assert content.index(b"\x00") > 4096  # early in the file, a NUL means a binary file: said so
    preview = refused(session, publisher, content, "fees.csv")
    assert "Line 62" in preview.errors[0].message and "NUL" in preview.errors[0].message
    preview = refused(session, publisher, b"credit_code,amount\n\x00\x01\x02", "fees.csv")
    assert "not a CSV or XLSX" in preview.errors[0].message


def test_csv_mixing_utf8_and_gbk_lines_is_refused_naming_both(session, firm, publisher):
    utf8 = csv_bytes(standard_rows(firm.credit_code), encoding="utf-8")
    gbk_row = csv_bytes([row(firm.credit_code, name_zh="铅封费", fee_code="S9")], encoding="gbk").split(b"\r\n", 1)[1]
    preview = refused(session, publisher, utf8 + gbk_row, "fees.csv")
    message = preview.errors[0].message
    assert "Line 6 is not UTF-8 although line 2 is" in message


def test_an_enormous_csv_field_is_refused_naming_its_row(session, firm, publisher):
    rows = standard_rows(firm.credit_code)
    rows[2]["service_content"] = "很长" * 100_000
    preview = refused(session, publisher, csv_bytes(rows), "fees.csv")
    assert preview.errors[0].row == 4 and "Row 4" in preview.errors[0].message
    assert "131072" in preview.errors[0].message


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "gb18030"])
def test_csv_in_each_accepted_encoding_reads_the_same(session, firm, publisher, encoding):
    preview = imports.preview_file(session, "f.csv", csv_bytes(standard_rows(firm.credit_code), encoding), publisher)
    assert preview.ok, [str(e) for e in preview.errors]
    assert [r.values["name_zh"] for r in preview.rows] == ["文件费", "设备交接单费", "码头操作费", "滞箱费"]


def test_a_dde_formula_is_refused_like_any_formula(session, firm, publisher):
    """DDE (=cmd|' /C calc'!A0) lives in formulas: refused by cell, never evaluated or read."""
    rows = standard_rows(firm.credit_code)
    rows[0]["service_content"] = "=cmd|' /C calc'!A0"
    preview = refused(session, publisher, xlsx_bytes(rows))
    assert [(e.row, e.column) for e in preview.errors] == [(2, "service_content")]
    assert "O2" in preview.errors[0].message
