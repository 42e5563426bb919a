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
