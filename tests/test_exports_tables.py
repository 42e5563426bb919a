"""CSV and XLSX downloads: a schedule re-imports unchanged, formulas are neutralised in both
formats, search results, comparisons and flags come out whole."""
from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from feereg.exports.csv import restore
from feereg.exports.tables import SCHEDULE_HEADER
from feereg.exports.xlsx import xlsx_bytes
from feereg.services import imports

from .audit_factories import make_flag
from .conftest import login
from .factories import make_firm, make_user, publish


@pytest.fixture
def yard(session):
    firm = make_firm("offport_yard", ports=("YANTIAN", "SHEKOU"), name_zh="深圳测试堆场有限公司")
    user = make_user("publisher", firm)
    publish(firm, user, fee_type="LOLO", name_zh="港外堆场吊箱费", name_en="Yard lift on/off",
            unit="per_container", container_size="40", amount="180.50", ports="YANTIAN;SHEKOU",
            service_content="=HYPERLINK(\"http://evil.example\",\"点击\")", legal_basis="-")
    publish(firm, user, fee_type="STORAGE", fee_code="ST-1", name_zh="堆存费", unit="per_container_day",
            amount="20", tiers="free:3;4-10:20;11-:40", tax_included="no", tax_rate="6", cargo_scope="reefer",
            direction="export", trade="foreign", ports="YANTIAN")
    session.commit()
    return firm, user


def _csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8, not GBK
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _xlsx_rows(body: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_exported_schedule_reimports_unchanged(client, session, yard, fmt):
    firm, user = yard
    response = client.get(f"/firms/{firm.credit_code}/schedule.{fmt}")
    assert response.status_code == 200
    assert f"feereg-schedule-{firm.credit_code}" in response.headers["Content-Disposition"]
    rows = _csv_rows(response.data) if fmt == "csv" else _xlsx_rows(response.data)
    assert tuple(rows[0]) == SCHEDULE_HEADER and len(rows) == 3
    preview = imports.preview_file(session, f"schedule.{fmt}", response.data, user)
    assert preview.ok, [str(e) for e in preview.errors]
    assert preview.counts == {"new": 0, "changed": 0, "unchanged": 2}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formula_cells_are_neutralised(client, yard, fmt):
    firm, _user = yard
    body = client.get(f"/firms/{firm.credit_code}/schedule.{fmt}").data
    rows = _csv_rows(body) if fmt == "csv" else _xlsx_rows(body)
    service = rows[0].index("service_content")
    texts = [row[service] for row in rows[1:]]
    assert "'=HYPERLINK(\"http://evil.example\",\"点击\")" in texts
    legal = rows[0].index("legal_basis")
    assert "'-" in [row[legal] for row in rows[1:]]
    if fmt == "xlsx":  # a text cell, never a formula; amounts stay numbers
        sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
        amounts = [row[rows[0].index("amount")] for row in rows[1:]]
        assert sorted(amounts) == [20, 180.5]


def test_xlsx_writer_neutralises_and_keeps_types():
    body = xlsx_bytes(["a", "b"], [["=1+1", 5], ["+86 755", None], ["@SUM(A1)", "x\x07y"]])
    assert _xlsx_rows(body) == [["a", "b"], ["'=1+1", 5], ["'+86 755", None], ["'@SUM(A1)", "xy"]]


def test_restore_undoes_only_our_neutralising():
    assert restore("'=1+1") == "=1+1" and restore("'-") == "-"
    assert restore("'quoted'") == "'quoted'" and restore("'") == "'" and restore(5) == 5


def test_comparison_csv_and_xlsx(client, session, yard):
    firm, _user = yard
    other = make_firm("offport_yard", name_zh="另一堆场")
    publish(other, make_user("publisher", other), fee_type="LOLO", name_zh="吊箱费", unit="per_container",
            container_size="40", amount="90", currency="USD")
    session.commit()
    rows = _csv_rows(client.get("/compare/LOLO/download.csv?size=40").data)
    assert rows[0][:3] == ["rank", "credit_code", "firm_zh"]
    assert [(r[0], r[2], r[12], r[13]) for r in rows[1:]] == [("1", "深圳测试堆场有限公司", "180.50", "CNY"),
                                                              ("2", "另一堆场", "90.00", "USD")]
    assert rows[2][14] not in ("", None)  # converted to CNY
    xrows = _xlsx_rows(client.get("/compare/LOLO/download.xlsx?size=40").data)
    assert [r[2] for r in xrows[1:]] == ["深圳测试堆场有限公司", "另一堆场"]
    assert client.get("/compare/NOSUCH/download.csv").status_code == 404


@pytest.mark.search_backends
def test_search_results_csv_and_xlsx(client, yard):
    firm, _user = yard
    rows = _csv_rows(client.get("/search/download.csv?q=吊箱").data)
    assert rows[0][0] == "credit_code" and [(r[0], r[5]) for r in rows[1:]] == [(firm.credit_code, "港外堆场吊箱费")]
    xrows = _xlsx_rows(client.get("/search/download.xlsx?q=堆存").data)
    assert [r[5] for r in xrows[1:]] == ["堆存费"]
    page = client.get("/search?q=吊箱").get_data(as_text=True)
    assert "/search/download.csv?q=" in page and "/search/download.xlsx?q=" in page


def test_flags_csv_and_xlsx_are_for_regulators(app, session, yard):
    firm, _user = yard
    make_flag(firm, "PEER_OUTLIER", "high")
    make_flag(firm, "STEEP_RISE", "medium", status="dismissed")
    regulator = make_user("regulator")
    session.commit()
    client = app.test_client()
    assert client.get("/regulator/flags.csv").status_code == 302
    login(client, regulator.email)
    rows = _csv_rows(client.get("/regulator/flags.csv").data)  # the page's default: open flags
    assert [r[1] for r in rows[1:] if r[4] == firm.credit_code] == ["PEER_OUTLIER"]
    xrows = _xlsx_rows(client.get("/regulator/flags.xlsx?status=").data)
    assert sorted(r[1] for r in xrows[1:] if r[4] == firm.credit_code) == ["PEER_OUTLIER", "STEEP_RISE"]
    report = _xlsx_rows(client.get(f"/regulator/report.xlsx?firm={firm.credit_code}").data)
    assert report[0][0] == "flag_id" and len(report) >= 2
