"""Responses that are files: a table as CSV or XLSX, a PDF. One place for the headers."""
from __future__ import annotations

from typing import Iterable, Sequence

from flask import Response

from ..exports.csv import csv_bytes
from ..exports.pdf import PDF_MIMETYPE
from ..exports.xlsx import XLSX_MIMETYPE, xlsx_bytes

TABLE_FORMATS = ("csv", "xlsx")


def _attachment(name: str) -> dict:
    # Names are built from ASCII codes and dates only, so no RFC 5987 encoding is needed.
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def table_response(fmt: str, name: str, header: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """`name` without extension. The body is built whole, not streamed: a streamed body
    would hold the request's database session open while a slow client downloads."""
    if fmt == "xlsx":
        return Response(xlsx_bytes(header, rows, sheet_title=name), mimetype=XLSX_MIMETYPE,
                        headers=_attachment(f"{name}.xlsx"))
    return Response(csv_bytes(header, rows), mimetype="text/csv",  # Flask adds "; charset=utf-8"
                    headers=_attachment(f"{name}.csv"))


def pdf_response(body: bytes, name: str) -> Response:
    return Response(body, mimetype=PDF_MIMETYPE, headers=_attachment(f"{name}.pdf"))
