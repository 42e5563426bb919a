"""The CSV writer: a BOM for spreadsheets, formulas neutralised, numbers left numbers."""
import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from feereg.exports.csv import csv_bytes, iter_csv, neutralise


@pytest.mark.parametrize("value", ["=1+1", "+86 755", "-2+3", "@SUM(A1)", "\t=cmd", "\r=cmd",
                                   '=HYPERLINK("http://evil.example","x")'])
def test_cells_a_spreadsheet_would_run_are_neutralised(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value,expected", [("文件费", "文件费"), ("a=b", "a=b"), (Decimal("-12.50"), Decimal("-12.50")),
                                            (3, 3), (None, ""), (date(2026, 1, 2), "2026-01-02")])
def test_ordinary_cells_are_kept(value, expected):
    assert neutralise(value) == expected


def test_file_is_utf8_with_bom_and_reads_back():
    body = csv_bytes(["id", "note"], [[1, "=WEBSERVICE(1)"], [2, "收费 ,\"quoted\"\nline"]])
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows == [["id", "note"], ["1", "'=WEBSERVICE(1)"], ["2", "收费 ,\"quoted\"\nline"]]


def test_streamed_chunks_are_the_same_file():
    rows = [[i, f"=x{i}"] for i in range(5)]
    assert "".join(iter_csv(["a", "b"], rows)).encode() == csv_bytes(["a", "b"], rows)
