"""The bulk download of the public registry, written into one directory:

  firms.csv / firms.jsonl         every firm, with its chain head
  items.csv / items.jsonl         the fee items in force on `current_on` (today in Shenzhen)
  versions.csv / versions.jsonl   every published version, with every field its hash covers
  manifest.json                   generated-at, counts, each file's size and SHA-256, each
                                  firm's chain head
  verify_bulk.py                  the offline verifier (feereg/verify_bulk.py, which also
                                  defines the columns written here)

CSV is for spreadsheets (UTF-8 with BOM, formulas neutralised by exports/csv.py); JSON Lines
is for programs (one object per line, amounts as decimal strings). Values are those of the
hash's canonical form (services/history.canonical_record): amounts with two decimals, times
in ISO 8601 naive UTC with microseconds, so a file's fields hash to the stored hash.

Everything streams: rows are read in pages and written as they come, the files hashed as
they are written; what is held is one page of rows, each firm's chain head and, for the
items in force, one firm's items at a time. The reads are short statements, not one long
transaction (a long read on SQLite would hold off every publish); they stay consistent
because the firm rows are read first and a firm's versions are exported only up to the
chain head read then — versions are append-only, so a publish while the files are being
written is simply not in them yet.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .. import verify_bulk as fmt
from ..models import PUBLISHED_FIELDS, FeeItemVersion, Firm, FirmPort
from ..services.history import HASH_VERSION, canonical_record
from .csv import BOM, neutralise

#: Rows read per statement.
PAGE = 5000
VERIFIER = Path(fmt.__file__)

_VERSION_READ = (FeeItemVersion.firm_id, FeeItemVersion.seq, FeeItemVersion.item_id, FeeItemVersion.kind,
                 FeeItemVersion.effective_from, FeeItemVersion.published_at, FeeItemVersion.published_by_id,
                 FeeItemVersion.reason, FeeItemVersion.prev_hash, FeeItemVersion.hash,
                 *(getattr(FeeItemVersion, name) for name in PUBLISHED_FIELDS))


@dataclass
class FileEntry:
    name: str
    table: str | None
    format: str
    rows: int | None
    bytes: int
    sha256: str


@dataclass(slots=True)
class Head:
    credit_code: str
    seq: int
    head: str


class _HashingSink(io.RawIOBase):
    """The bytes on their way to the file, hashed and counted (no second read to hash)."""

    def __init__(self, path: Path):
        self._file = path.open("wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self._file.write(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class _TableFiles:
    """One table written as CSV and JSON Lines side by side."""

    def __init__(self, directory: Path, table: str):
        self.table, self.columns, self.rows = table, fmt.COLUMNS[table], 0
        self._sinks, self._texts = {}, {}
        for kind, newline in (("csv", ""), ("jsonl", "\n")):
            sink = _HashingSink(directory / fmt.file_name(table, kind))
            self._sinks[kind] = sink
            self._texts[kind] = io.TextIOWrapper(io.BufferedWriter(sink, 1 << 20), encoding="utf-8",
                                                 newline=newline)
        self._texts["csv"].write(BOM)
        self._csv = csv.writer(self._texts["csv"], lineterminator="\r\n")
        self._csv.writerow(self.columns)

    def write(self, record: dict) -> None:
        self._csv.writerow([neutralise(record[name]) for name in self.columns])
        self._texts["jsonl"].write(json.dumps({name: record[name] for name in self.columns},
                                              ensure_ascii=False, separators=(",", ":")) + "\n")
        self.rows += 1

    def close(self) -> list[FileEntry]:
        entries = []
        for kind, text in self._texts.items():
            text.close()  # flushes the buffer through the sink
            sink = self._sinks[kind]
            entries.append(FileEntry(fmt.file_name(self.table, kind), self.table, kind, self.rows, sink.size,
                                     sink.digest.hexdigest()))
        return entries


def _firm_pages(conn: Connection) -> Iterator[list]:
    last = 0
    columns = (Firm.id, Firm.credit_code, Firm.name_zh, Firm.name_en, Firm.category, Firm.status,
               Firm.status_reason, Firm.contact_phone, Firm.chain_seq, Firm.chain_head)
    while True:
        rows = conn.execute(select(*columns).where(Firm.id > last).order_by(Firm.id).limit(PAGE)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def write_firms(conn: Connection, files: _TableFiles) -> dict[int, Head]:
    """Write the firms; return each firm's chain head as read, the bound of its export."""
    heads: dict[int, Head] = {}
    for rows in _firm_pages(conn):
        ports: dict[int, list[str]] = {}
        for firm_id, port in conn.execute(
                select(FirmPort.firm_id, FirmPort.port)
                .where(FirmPort.firm_id.between(rows[0].id, rows[-1].id)).order_by(FirmPort.firm_id, FirmPort.port)):
            ports.setdefault(firm_id, []).append(port)
        for row in rows:
            files.write({
                "credit_code": row.credit_code, "name_zh": row.name_zh, "name_en": row.name_en or "",
                "category": row.category, "ports": ";".join(ports.get(row.id, [])), "status": row.status,
                "status_reason": row.status_reason or "", "contact_phone": row.contact_phone or "",
                "chain_seq": row.chain_seq, "chain_head": row.chain_head or "",
            })
            heads[row.id] = Head(row.credit_code, row.chain_seq, row.chain_head or "")
    return heads


def _version_windows(heads: dict[int, Head]) -> Iterator[tuple]:
    """Conditions that read the exported versions in (firm, seq) order, about PAGE at a
    time: runs of small firms together, a big firm's chain in windows of seq."""
    run: list[int] = []
    size = 0
    for firm_id, head in heads.items():
        if not head.seq:
            continue
        if head.seq > PAGE:
            if run:
                yield (FeeItemVersion.firm_id.between(run[0], run[-1]),)
                run, size = [], 0
            for low in range(0, head.seq, PAGE):
                yield (FeeItemVersion.firm_id == firm_id, FeeItemVersion.seq > low,
                       FeeItemVersion.seq <= min(low + PAGE, head.seq))
            continue
        run.append(firm_id)
        size += head.seq
        if size >= PAGE:
            yield (FeeItemVersion.firm_id.between(run[0], run[-1]),)
            run, size = [], 0
    if run:
        yield (FeeItemVersion.firm_id.between(run[0], run[-1]),)


def write_versions(conn: Connection, heads: dict[int, Head], on: date, versions: _TableFiles,
                   items: _TableFiles, progress: Callable[[int], None] | None = None) -> None:
    """Every version up to each firm's head, and on the way the items in force on `on`: per
    item, the latest version effective by then (ties: the later in the chain), if a publish."""
    firm_id, in_force = None, {}

    def flush_items():
        for record in sorted(in_force.values(), key=lambda r: r["seq"]):
            if record["kind"] == "publish":
                items.write(record)

    checked = False
    for window in _version_windows(heads):
        stmt = select(*_VERSION_READ).where(*window).order_by(FeeItemVersion.firm_id, FeeItemVersion.seq)
        for row in conn.execute(stmt):
            head = heads.get(row.firm_id)
            if head is None or row.seq > head.seq:  # published after the firm was read
                continue
            if row.firm_id != firm_id:
                flush_items()
                firm_id, in_force = row.firm_id, {}
            record = canonical_record(row, head.credit_code)
            record["hash"] = row.hash
            if not checked:
                _check_columns(record)
                checked = True
            versions.write(record)
            if row.effective_from <= on:
                # Rows come in seq order, so a later one with the same date wins the tie.
                best = in_force.get(row.item_id)
                if best is None or record["effective_from"] >= best["effective_from"]:
                    in_force[row.item_id] = record
        if progress:
            progress(versions.rows)
    flush_items()


def _check_columns(record: dict) -> None:
    """The hash's canonical form and the download's columns must hold the same fields, or
    the files could not be verified: fail the build rather than publish such files."""
    if set(record) != set(fmt.VERSION_COLUMNS) or set(PUBLISHED_FIELDS) != set(fmt.PUBLISHED):
        raise RuntimeError("bulk download columns differ from the hash's canonical record: "
                           f"{sorted(set(record) ^ set(fmt.VERSION_COLUMNS))}")


def write_bulk(conn: Connection, directory: Path, on: date,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the whole download into `directory` (which must exist, empty); return the manifest.
    `progress(versions written, versions to write)` follows the long part (a job's page)."""
    generated_at = datetime.now(timezone.utc).replace(tzinfo=None)
    firms = _TableFiles(directory, "firms")
    heads = write_firms(conn, firms)
    versions, items = _TableFiles(directory, "versions"), _TableFiles(directory, "items")
    total = sum(head.seq or 0 for head in heads.values())
    if progress:
        progress(0, total)
    write_versions(conn, heads, on, versions, items, progress and (lambda done: progress(done, total)))
    entries = firms.close() + items.close() + versions.close()
    shutil.copyfile(VERIFIER, directory / VERIFIER.name)
    verifier = directory / VERIFIER.name
    entries.append(FileEntry(verifier.name, None, "py", None, verifier.stat().st_size,
                             fmt.sha256_file(verifier)))
    manifest = {
        "format": fmt.FORMAT,
        "hash_scheme": HASH_VERSION,
        "generated_at": generated_at.isoformat(timespec="seconds") + "Z",
        "current_on": on.isoformat(),
        "counts": {"firms": firms.rows, "items": items.rows, "versions": versions.rows},
        "files": [asdict(entry) for entry in entries],
        "chains": {head.credit_code: {"seq": head.seq, "head": head.head} for head in heads.values()},
    }
    with (directory / fmt.MANIFEST).open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    return manifest
