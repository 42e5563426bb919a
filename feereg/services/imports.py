"""Bulk import of fee schedules (and, for operators, firms) from interchange files.

Validation runs over the whole file before anything is written and produces a
preview: every row classified new / changed / unchanged, and every error with
its row, column and reason. Apply re-validates against the database as it is at
that moment and publishes everything in the caller's one transaction, or nothing.
"""
from __future__ import annotations

import hashlib
import io
import re
import secrets
import zipfile
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import codes, credit_code
from ..interchange.columns import (
    FEE_ITEM_COLUMNS, FEE_ITEM_OPTIONAL, FEE_ITEM_REQUIRED, FIRM_COLUMNS, FIRM_REQUIRED,
)
from ..interchange.reader import FileRefused, Table, read_table
from ..item_fields import FieldError, clean_choice, clean_date, clean_item_values, clean_ports, clean_text, text
from ..models import FeeItem, FeeItemVersion, Firm, PendingImport
from ..models.types import utcnow
from . import audit, firms as firm_service, registry
from .catalog import CatalogIndex
from .errors import InvalidInput


@dataclass
class RowError:
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        return f"{where}, {self.column or '—'}: {self.message}"


@dataclass
class RowResult:
    row: int
    credit_code: str
    #: new, changed, unchanged, or error
    status: str
    values: dict = field(default_factory=dict)
    effective_from: date | None = None
    item_id: int | None = None
    #: {field: (published value, new value)} for changed rows
    diff: dict = field(default_factory=dict)
    mapped_via: str = ""


@dataclass
class ImportPreview:
    kind: str  # fee_items or firms
    rows: list[RowResult] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def counts(self) -> dict:
        return {s: self.count(s) for s in ("new", "changed", "unchanged")}

    def fingerprint(self) -> str:
        """Identifies what confirming would write, so a stale preview is never applied blind."""
        digest = hashlib.sha256()
        for r in self.rows:
            digest.update(f"{r.row}|{r.status}|{r.item_id}|{sorted(r.diff)}\n".encode())
        return digest.hexdigest()[:32]


def file_kind(table: Table) -> str:
    header = set(table.header)
    if "amount" in header or "fee_type" in header:
        return "fee_items"
    if "category" in header and "amount" not in header:
        return "firms"
    return "unknown"


def load_table(filename: str, content: bytes) -> Table:
    cfg = current_app.config
    return read_table(filename, content, cfg["IMPORT_MAX_ROWS"], cfg["IMPORT_MAX_UNPACKED_BYTES"])


def preview_pending(session: Session, pending, actor, effective_from: str | None,
                    progress: Callable[[int, int], None] | None = None) -> ImportPreview:
    """The preview of an upload kept for review, with the effective date the page carries
    (an unreadable one is no default: each row's own date, or the field's error, decides)."""
    from ..item_fields import FieldError, clean_date

    try:
        default = clean_date(effective_from) if effective_from else None
    except FieldError:
        default = None
    return preview_file(session, pending.filename, pending.content, actor, default, progress=progress)


def preview_file(session: Session, filename: str, content: bytes, actor,
                 default_effective_from: date | None = None, allow_backdate: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> ImportPreview:
    """`progress(rows checked, rows)` is called as the rows are checked (a big file's job)."""
    try:
        table = load_table(filename, content)
    except FileRefused as exc:
        errors = [RowError(row, column, reason) for row, column, reason in exc.errors]
        return ImportPreview("unknown", errors=errors or [RowError(0, "", str(exc))])
    kind = file_kind(table)
    if kind == "firms":
        if actor is None or actor.role != "admin":
            return ImportPreview("firms", errors=[RowError(0, "", str(_l(
                "Only an operator can import firms; publishers import fee items.")))])
        return preview_firms(session, table)
    if kind == "unknown":
        return ImportPreview("unknown", errors=[RowError(1, "", str(_l(
            "The header row does not have the interchange columns (e.g. credit_code, name_zh, amount).")))])
    return preview_fee_items(session, table, actor, default_effective_from or registry.today(), allow_backdate,
                             progress)


def _header_errors(table: Table, required, known) -> list[RowError]:
    errors = [RowError(1, name, str(_l("required column is missing"))) for name in required if name not in table.header]
    table.unknown_columns = [h for h in table.header if h and h not in known]
    for number, row in table.rows:
        if "__extra__" in row:
            errors.append(RowError(number, "", str(_l("the row has more cells than the header has columns"))))
    return errors


def preview_fee_items(session: Session, table: Table, actor, default_effective_from: date,
                      allow_backdate: bool = False, progress: Callable[[int, int], None] | None = None
                      ) -> ImportPreview:
    preview = ImportPreview("fee_items", notes=list(table.notes))
    preview.errors = _header_errors(table, FEE_ITEM_REQUIRED, set(FEE_ITEM_COLUMNS) | set(FEE_ITEM_OPTIONAL))
    if table.unknown_columns:
        preview.notes.append(_l("Ignored columns: %(names)s", names=", ".join(table.unknown_columns)))
    if any(e.row == 1 for e in preview.errors):
        return preview
    if not table.rows:
        preview.errors.append(RowError(0, "", str(_l("The file has a header but no rows."))))
        return preview
    catalog = CatalogIndex.load(session)
    firms_by_code: dict[str, Firm | None] = {}
    existing: dict[int, _FirmItems] = {}
    seen_keys: dict[tuple, int] = {}
    today = registry.today()

    for checked, (number, raw) in enumerate(table.rows):
        if progress and checked % PROGRESS_ROWS == 0:
            progress(checked, len(table.rows))
        row_errors: list[RowError] = []
        firm = _row_firm(session, raw, number, actor, firms_by_code, row_errors)
        values, field_errors = clean_item_values(raw, catalog)
        row_errors += [RowError(number, e.field, str(e.message)) for e in field_errors]
        effective = default_effective_from
        if text(raw.get("effective_from")):
            try:
                effective = clean_date(raw.get("effective_from"))
            except FieldError as exc:
                row_errors.append(RowError(number, "effective_from", str(exc.message)))
        result = RowResult(number, text(raw.get("credit_code")), "error", values, effective)
        match = catalog.match(values.get("name_zh") or "") if not text(raw.get("fee_type")) else None
        if match and match.how == "contained" and values.get("fee_type_code"):
            result.mapped_via = match.via
        if firm is not None and not row_errors:
            key = item_key(values)
            if (firm.id, key) in seen_keys:
                row_errors.append(RowError(number, "fee_code" if key[0] == "code" else "name_zh", str(_l(
                    "the same item appears again (first at row %(row)s)", row=seen_keys[(firm.id, key)]))))
            seen_keys.setdefault((firm.id, key), number)
            items = existing.get(firm.id) or existing.setdefault(firm.id, _FirmItems.load(session, firm.id))
            _classify(result, items.find(key), items)
            if result.status in ("new", "changed") and effective < today and not allow_backdate:
                row_errors.append(RowError(number, "effective_from", str(_l(
                    "%(date)s is in the past; published history cannot be back-dated",
                    date=effective.isoformat()))))
        if row_errors:
            result.status = "error"
            preview.errors.extend(row_errors)
        preview.rows.append(result)
    return preview


#: Rows checked between two progress reports.
PROGRESS_ROWS = 250


def estimate_rows(filename: str, content: bytes) -> int:
    """About how many rows a file has, without reading it: to decide, within the upload's
    request, whether checking it is a job. CSV: its line count. XLSX: the first sheet's
    declared dimension, but never fewer than its compressed size allows (about 64 bytes a
    row): a workbook that declares none, or too few, is not checked within the request."""
    if not filename.lower().endswith(".xlsx"):
        return max(0, content.count(b"\n") - 1)
    declared = 0
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            sheets = sorted(n for n in archive.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
            if sheets:
                with archive.open(sheets[0]) as fh:
                    head = fh.read(4096).decode("utf-8", "replace")
                found = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
                declared = int(found.group(1)) - 1 if found else 0
    except Exception:  # noqa: BLE001 - also encrypted parts, unknown compression, corrupt data
        return 0  # not a readable workbook: the check refuses it at once, saying why
    return max(declared, len(content) // 64)


def item_key(values: dict) -> tuple:
    """How a file row finds its item: the firm's own fee code, else what the fee is."""
    if values.get("fee_code"):
        return ("code", values["fee_code"])
    return ("fee", values.get("fee_type_code"), values.get("name_zh"), values.get("unit"),
            values.get("container_size"), values.get("cargo_scope"), values.get("trade"),
            values.get("direction"))


class _FirmItems:
    def __init__(self, items: list[FeeItem], latest: dict[int, FeeItemVersion]):
        self.by_key = {}
        for item in items:
            self.by_key.setdefault(item_key(item.published_values()), item)
        self.latest = latest

    @classmethod
    def load(cls, session: Session, firm_id: int) -> "_FirmItems":
        items = list(session.scalars(select(FeeItem).where(FeeItem.firm_id == firm_id)))
        latest: dict[int, FeeItemVersion] = {}
        for version in session.scalars(
            select(FeeItemVersion).where(FeeItemVersion.firm_id == firm_id).order_by(FeeItemVersion.seq)
        ):
            latest[version.item_id] = version
        return cls(items, latest)

    def find(self, key) -> FeeItem | None:
        return self.by_key.get(key)


def _classify(result: RowResult, item: FeeItem | None, items: _FirmItems) -> None:
    if item is None:
        result.status = "new"
        return
    result.item_id = item.id
    last = items.latest.get(item.id)
    if last is None or last.kind == "withdraw":
        result.status = "new" if last is None else "changed"
        if last is not None:
            result.diff = {"status": ("withdrawn", "published")}
        return
    published = last.published_values()
    result.diff = {k: (published[k], v) for k, v in result.values.items() if published.get(k) != v}
    result.status = "changed" if result.diff else "unchanged"


def _row_firm(session, raw, number, actor, cache, errors) -> Firm | None:
    raw_code = text(raw.get("credit_code"))
    try:
        code = credit_code.validate(raw_code)
    except credit_code.InvalidCreditCode as exc:
        errors.append(RowError(number, "credit_code", str(_l("“%(code)s”: %(reason)s", code=raw_code, reason=str(exc)))))
        return None
    if code not in cache:
        cache[code] = firm_service.find_by_credit_code(session, code)
    firm = cache[code]
    if firm is None:
        errors.append(RowError(number, "credit_code", str(_l("no registered firm has the credit code %(code)s", code=code))))
        return None
    if not registry.can_edit(actor, firm):
        errors.append(RowError(number, "credit_code", str(_l("you may only import your own firm's fee items"))))
        return None
    if firm.is_suspended:
        errors.append(RowError(number, "credit_code", str(_l("the firm is suspended and cannot publish"))))
        return None
    return firm


def apply_preview(session: Session, preview: ImportPreview, actor, reason: str = "",
                  allow_backdate: bool = False) -> dict:
    """Write what a clean preview found, in the caller's transaction. Returns counts."""
    if not preview.ok:
        raise InvalidInput(_l("The file has errors; nothing was imported."), preview.errors)
    if preview.kind == "firms":
        return _apply_firms(session, preview, actor)
    by_firm: dict[int, list[registry.Change]] = {}
    for result in preview.rows:
        if result.status not in ("new", "changed"):
            continue
        firm = firm_service.find_by_credit_code(session, result.credit_code)
        item = session.get(FeeItem, result.item_id) if result.item_id else None
        by_firm.setdefault(firm.id, []).append(registry.Change(item, result.values, result.effective_from))
    published = 0
    for firm_id, changes in by_firm.items():
        firm = session.get(Firm, firm_id)
        published += len(registry.publish_changes(
            session, firm, changes, actor, reason=reason or str(_l("Imported from a file")),
            allow_backdate=allow_backdate))
    audit.record(session, "import.apply", actor, None, actor.firm_id if actor else None,
                 **preview.counts, published=published)
    return {**preview.counts, "published": published}


# --- firms (operators only) -------------------------------------------------------------

def preview_firms(session: Session, table: Table) -> ImportPreview:
    preview = ImportPreview("firms", notes=list(table.notes))
    preview.errors = _header_errors(table, FIRM_REQUIRED, set(FIRM_COLUMNS))
    if any(e.row == 1 for e in preview.errors):
        return preview
    seen: dict[str, int] = {}
    for number, raw in table.rows:
        errors: list[RowError] = []
        values = {}
        try:
            values["credit_code"] = credit_code.validate(text(raw.get("credit_code")))
        except credit_code.InvalidCreditCode as exc:
            errors.append(RowError(number, "credit_code", str(exc)))
        for name, limit, required in (("name_zh", 200, True), ("name_en", 200, False),
                                      ("contact_phone", 64, False), ("contact_email", 200, False)):
            try:
                values[name] = clean_text(raw.get(name), name, limit, required)
            except FieldError as exc:
                errors.append(RowError(number, name, str(exc.message)))
        try:
            values["category"] = clean_choice(raw.get("category"), codes.CATEGORIES, "category")
        except FieldError as exc:
            errors.append(RowError(number, "category", str(exc.message)))
        try:
            values["ports"] = codes.split_list(clean_ports(raw.get("ports")))
        except FieldError as exc:
            errors.append(RowError(number, "ports", str(exc.message)))
        code = values.get("credit_code")
        if code and code in seen:
            errors.append(RowError(number, "credit_code", str(_l("the same firm appears again (first at row %(row)s)", row=seen[code]))))
        if code:
            seen.setdefault(code, number)
        result = RowResult(number, code or "", "error", values)
        if not errors:
            firm = firm_service.find_by_credit_code(session, code)
            if firm is None:
                result.status = "new"
            else:
                result.item_id = firm.id
                current = {"name_zh": firm.name_zh, "name_en": firm.name_en, "category": firm.category,
                           "contact_phone": firm.contact_phone, "contact_email": firm.contact_email,
                           "ports": firm.port_codes}
                result.diff = {k: (current[k], v) for k, v in values.items() if k in current and current[k] != v}
                result.status = "changed" if result.diff else "unchanged"
        preview.errors.extend(errors)
        preview.rows.append(result)
    return preview


def _apply_firms(session: Session, preview: ImportPreview, actor) -> dict:
    for result in preview.rows:
        if result.status == "new":
            firm_service.create_firm(session, result.values, actor)
        elif result.status == "changed":
            firm_service.update_profile(session, session.get(Firm, result.item_id), result.values, actor)
    audit.record(session, "import.firms", actor, None, None, **preview.counts)
    return preview.counts


# --- pending uploads (web: upload → preview → confirm) ----------------------------------

def stash_upload(session: Session, actor, filename: str, content: bytes) -> PendingImport:
    pending = PendingImport(token=secrets.token_urlsafe(24), user_id=actor.id, firm_id=actor.firm_id,
                            filename=filename[:255], content=content)
    session.add(pending)
    session.flush()
    return pending


def get_pending(session: Session, token: str, actor) -> PendingImport | None:
    pending = session.scalar(select(PendingImport).where(PendingImport.token == token))
    if pending is None or pending.user_id != actor.id or pending.status != "pending":
        return None
    return pending


def finish_pending(pending: PendingImport, status: str) -> None:
    pending.status = status
    # The content is no longer needed once decided; keep the record for the audit trail.
    pending.content = b""
    pending.created_at = pending.created_at or utcnow()
