"""Open data on the public blueprint: the bulk download's page and its files. Both bring a
stale download up to date first (services/bulk_download.py), so what is offered includes
every published change."""
from __future__ import annotations

from flask import abort, render_template, send_file

from .. import codes
from ..services import bulk_download
from ..verify_bulk import MANIFEST
from .public import bp

#: Content types of the download's files, by format.
MIMETYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson",
             "json": "application/json", "py": "text/x-python"}


def file_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} GB"


@bp.get("/data")
def open_data():
    download = bulk_download.fresh_download()
    return render_template("public/open_data.html", download=download, file_size=file_size,
                           ports=list(codes.PORTS.values()))


@bp.get("/data/<name>")
def open_data_file(name: str):
    download = bulk_download.fresh_download()
    if not download.ready:
        abort(404)
    listed = {entry["name"]: entry["format"] for entry in download.summary["files"]}
    listed[MANIFEST] = "json"
    if name not in listed:
        abort(404)
    # The manifest is for programs as much as for people: shown in the browser, not saved.
    return send_file(download.directory / name, mimetype=MIMETYPES[listed[name]], conditional=True,
                     as_attachment=name != MANIFEST, download_name=name, max_age=60)
