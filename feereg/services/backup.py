"""Backup and restore of the whole registry, in a file that does not depend on the database.

The archive is one gzip'd stream of JSON lines, read and written a row at a time, so a
registry of a million items never sits in memory:

    {"format": "feereg-backup", "version": 1, "alembic_revision": ..., "tables": [...]}
    {"table": "firm", "columns": ["id", ...]}
    [1, "91440300...", ...]                       one line per row, in primary-key order
    {"end": "firm", "rows": 679, "sha256": ...}   over that table's row lines
    ...
    {"manifest": {"firm": {"rows": ..., "sha256": ...}, ...}, "sha256": ...}   over every line before it

Values that JSON has no type for are tagged: {"$decimal": "450.00"}, {"$date": ...},
{"$datetime": ...}, {"$bytes": base64}, and a JSON column's object {"$json": {...}}.

Every table of the models is dumped (derived state — the search index, the bulk download
— is rebuilt after a restore, not carried). The dump reads one consistent snapshot; the
file is written beside its destination and renamed into place when complete. A restore
first reads the whole archive and checks every count and hash and the schema revision,
then writes everything in one transaction, so a damaged archive changes nothing.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Table, func, select, text
from sqlalchemy.engine import Connection, Engine

from ..extensions import db

FORMAT = "feereg-backup"
VERSION = 1
#: Rows written to the database per statement on restore.
BATCH = 2000
#: Tables the migrations fill (reference data): replaced by the archive's rows, and not
#: what makes a database "not empty".
SEEDED = {"fee_type"}

Progress = Callable[[str, int], None]


class BackupError(Exception):
    """A refused backup or restore, with a message for the operator."""


@dataclass
class BackupSummary:
    path: Path
    revision: str
    rows: dict[str, int]
    bytes: int
    sha256: str


@dataclass
class RestoreReport:
    revision: str
    rows: dict[str, int]
    indexed: int = 0
    firms_verified: int = 0
    problems: list = field(default_factory=list)


def tables() -> list[Table]:
    """Every table of the models, parents before children."""
    return list(db.metadata.sorted_tables)


def schema_revision(conn: Connection) -> str:
    try:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception as exc:  # noqa: BLE001 - no table: never migrated
        raise BackupError(f"the database has no schema revision (run `feereg db upgrade` first): {exc}") from None
    if not rows:
        raise BackupError("the database has no schema revision (run `feereg db upgrade` first)")
    return ",".join(sorted(rows))


# --- values ------------------------------------------------------------------------------


def _encode(value):
    if value is None or isinstance(value, (bool, int, float, str, list)):
        return value
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, time):
        return {"$time": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {"$json": value}
    raise BackupError(f"cannot write a value of type {type(value).__name__}")


_DECODERS = {
    "$decimal": Decimal,
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$time": time.fromisoformat,
    "$bytes": base64.b64decode,
    "$json": lambda value: value,
}


def _decode(value):
    if isinstance(value, dict):
        ((tag, raw),) = value.items()
        return _DECODERS[tag](raw)
    return value


def _line(obj) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


# --- writing -----------------------------------------------------------------------------


def write_backup(engine: Engine, path: Path, progress: Progress | None = None) -> BackupSummary:
    """Dump every table to `path`, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
    temporary = Path(handle.name)
    try:
        with handle:
            whole = hashlib.sha256()
            with gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6, mtime=0) as out:
                def emit(data: bytes) -> None:
                    whole.update(data)
                    out.write(data)

                revision, counts, manifest = _dump(engine, emit, progress)
                out.write(_line({"manifest": manifest, "sha256": whole.hexdigest()}))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        _fsync_directory(path.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return BackupSummary(path, revision, counts, path.stat().st_size, _file_sha256(path))


def _dump(engine: Engine, emit: Callable[[bytes], None], progress: Progress | None):
    counts, manifest = {}, {}
    with _snapshot(engine) as conn:
        revision = schema_revision(conn)
        emit(_line({"format": FORMAT, "version": VERSION, "alembic_revision": revision,
                    "dialect": engine.dialect.name, "tables": [t.name for t in tables()]}))
        for table in tables():
            columns = [c.name for c in table.columns]
            emit(_line({"table": table.name, "columns": columns}))
            digest, count = hashlib.sha256(), 0
            rows = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
                select(table).order_by(*table.primary_key.columns))
            try:
                for row in rows:
                    data = _line([_encode(value) for value in row])
                    digest.update(data)
                    emit(data)
                    count += 1
                    if progress and count % BATCH == 0:
                        progress(table.name, BATCH)
            finally:
                rows.close()  # PostgreSQL: the server-side cursor, also when writing failed
            if progress and count % BATCH:
                progress(table.name, count % BATCH)
            emit(_line({"end": table.name, "rows": count, "sha256": digest.hexdigest()}))
            counts[table.name] = count
            manifest[table.name] = {"rows": count, "sha256": digest.hexdigest()}
    return revision, counts, manifest


class _snapshot:
    """One read-only transaction over the whole dump, so every table is read as of one
    moment (a publish during the dump is wholly in it or wholly out)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def __enter__(self) -> Connection:
        if self.engine.dialect.name == "postgresql":
            self.conn = self.engine.connect().execution_options(isolation_level="REPEATABLE READ")
            self.conn.begin()
            self.conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        else:
            # pysqlite opens a transaction only for writes; the dump's reads need their own.
            self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.conn.exec_driver_sql("BEGIN")
        return self.conn

    def __exit__(self, *exc) -> None:
        try:
            if self.engine.dialect.name == "postgresql":
                self.conn.rollback()
            else:
                self.conn.exec_driver_sql("ROLLBACK")
        finally:
            self.conn.close()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- reading -----------------------------------------------------------------------------


@dataclass
class _Header:
    revision: str
    tables: list[str]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with gzip.open(path, "rb") as stream:
            for number, data in enumerate(stream, start=1):
                yield number, data
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise BackupError(f"{path}: the archive is damaged or cut short ({type(exc).__name__}: {exc})") from None


def _parse(path: Path, number: int, data: bytes):
    try:
        return json.loads(data)
    except ValueError as exc:
        raise BackupError(f"{path}, line {number}: not a line of a feereg backup ({exc})") from None


def check_archive(path: Path) -> _Header:
    """Read the whole archive and check its form, every table's row count and hash, and the
    manifest's hash of the whole; raise BackupError naming the first fault."""
    path = Path(path)
    known = {t.name: [c.name for c in t.columns] for t in tables()}
    whole = hashlib.sha256()
    header, table, digest, count, columns = None, None, None, 0, 0
    seen: dict[str, dict] = {}
    manifest = None
    for number, data in _lines(path):
        if manifest is not None:
            raise BackupError(f"{path}, line {number}: data after the manifest")
        obj = _parse(path, number, data)
        if header is None:
            if not (isinstance(obj, dict) and obj.get("format") == FORMAT):
                raise BackupError(f"{path}: not a feereg backup (no header line)")
            if obj.get("version") != VERSION:
                raise BackupError(f"{path}: backup format version {obj.get('version')}; this feereg reads {VERSION}")
            header = _Header(obj["alembic_revision"], list(obj["tables"]))
            unknown = sorted(set(header.tables) - set(known))
            if unknown:
                raise BackupError(f"{path}: tables this schema does not have: {', '.join(unknown)}")
        elif isinstance(obj, list):
            if table is None:
                raise BackupError(f"{path}, line {number}: a row outside any table")
            if len(obj) != columns:
                raise BackupError(f"{path}, line {number}: {len(obj)} values for {columns} columns of {table}")
            digest.update(data)
            count += 1
        elif "table" in obj:
            if table is not None:
                raise BackupError(f"{path}, line {number}: table {obj['table']} starts before {table} ends")
            table = obj["table"]
            if table not in known or obj["columns"] != known[table]:
                raise BackupError(f"{path}, line {number}: table {table} has columns {obj.get('columns')}; "
                                  f"this schema has {known.get(table)}")
            digest, count, columns = hashlib.sha256(), 0, len(obj["columns"])
        elif "end" in obj:
            if obj["end"] != table or obj["rows"] != count or obj["sha256"] != digest.hexdigest():
                raise BackupError(f"{path}, line {number}: table {table} does not match its count and hash "
                                  f"({count} rows read, {obj.get('rows')} written)")
            seen[table] = {"rows": count, "sha256": obj["sha256"]}
            table = None
        elif "manifest" in obj:
            if table is not None:
                raise BackupError(f"{path}, line {number}: the manifest comes before table {table} ends")
            if obj["sha256"] != whole.hexdigest() or obj["manifest"] != seen:
                raise BackupError(f"{path}, line {number}: the manifest does not match the archive")
            manifest = obj["manifest"]
            continue
        else:
            raise BackupError(f"{path}, line {number}: not a line of a feereg backup")
        whole.update(data)
    if header is None:
        raise BackupError(f"{path}: the archive is empty")
    if manifest is None:
        raise BackupError(f"{path}: the archive is cut short (no manifest at its end)")
    if sorted(seen) != sorted(header.tables):
        raise BackupError(f"{path}: the archive lacks tables {sorted(set(header.tables) - set(seen))}")
    return header


def _table_rows(path: Path) -> Iterator[tuple[str, list[str], Iterator[list]]]:
    """Per table of a checked archive: its name, columns and rows (decoded), streamed."""
    lines = iter(_lines(path))
    for number, data in lines:
        obj = json.loads(data)
        if isinstance(obj, dict) and "table" in obj:
            table, columns = obj["table"], obj["columns"]

            def rows():
                for _, row_data in lines:
                    row = json.loads(row_data)
                    if not isinstance(row, list):
                        return  # the table's end line
                    yield [_decode(value) for value in row]

            body = rows()
            yield table, columns, body
            for _ in body:  # whatever the caller left unread
                pass


# --- restoring ---------------------------------------------------------------------------


def restore_backup(engine: Engine, path: Path, force: bool = False, progress: Progress | None = None
                   ) -> RestoreReport:
    """Check the archive whole, then load it into this (migrated) database in one transaction.

    Refused — nothing changed — when the archive is damaged, when its schema revision is not
    this database's, or when the database already holds a registry (unless `force`, which
    replaces it). PostgreSQL's id sequences are moved past the restored ids."""
    path = Path(path)
    header = check_archive(path)
    by_name = {t.name: t for t in tables()}
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        revision = schema_revision(conn)
        if revision != header.revision:
            raise BackupError(f"the archive is of schema revision {header.revision}, this database is at "
                              f"{revision}: restore into a database migrated to {header.revision}")
        occupied = {name: n for name, n in _row_counts(conn).items() if n and name not in SEEDED}
        if occupied and not force:
            listed = ", ".join(f"{name} ({n} rows)" for name, n in sorted(occupied.items()))
            raise BackupError(f"the database is not empty: {listed}. Restore into an empty migrated database, "
                              "or pass --force to replace everything in it")
        for table in reversed(tables()):
            conn.execute(table.delete())
        for name, columns, rows in _table_rows(path):
            table = by_name[name]
            counts[name] = 0
            batch = []
            for row in rows:
                batch.append(dict(zip(columns, row)))
                if len(batch) >= BATCH:
                    _insert(conn, table, batch, progress)
                    counts[name] += len(batch)
                    batch = []
            if batch:
                _insert(conn, table, batch, progress)
                counts[name] += len(batch)
        if engine.dialect.name == "postgresql":
            _reset_sequences(conn)
    return RestoreReport(header.revision, counts)


def _insert(conn: Connection, table: Table, batch: list[dict], progress: Progress | None) -> None:
    conn.execute(table.insert(), batch)
    if progress:
        progress(table.name, len(batch))


def _row_counts(conn: Connection) -> dict[str, int]:
    return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in tables()}


def _reset_sequences(conn: Connection) -> None:
    """Each serial id's sequence continues after the highest restored id (the inserts gave
    ids explicitly, which does not move a sequence)."""
    for table in tables():
        for column in table.primary_key.columns:
            sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                    {"t": table.name, "c": column.name}).scalar()
            if sequence:
                highest = f'SELECT MAX("{column.name}") FROM "{table.name}"'
                conn.execute(text(f"SELECT setval(:s, COALESCE(({highest}), 0) + 1, false)"), {"s": sequence})


def finish_restore(report: RestoreReport, session, progress: Callable[[int], None] | None = None) -> RestoreReport:
    """After the restore's commit: rebuild the search index, mark the bulk download stale,
    and verify every firm's hash chain (the restored history is the proof)."""
    from .. import http_cache
    from ..search import get_backend
    from . import bulk_download, history

    report.indexed = get_backend().rebuild(progress=progress)
    bulk_download.mark_stale()
    # The rows came in through a raw connection, past the listeners that renew the pages' ETags.
    http_cache.mark_changed()
    report.firms_verified, report.problems = history.verify_all(session)
    return report
