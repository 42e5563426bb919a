"""Writing the demo registry: through the services' bulk writers, or by COPY on PostgreSQL.

The generator hands over one batch of firms at a time: first to get their ids (which
the generated items carry), then with the batch's items and whole histories.

`ServiceWriter` (SQLite, and any other database) uses firms.create_firms and
registry.load_history. `CopyWriter` (PostgreSQL) writes the same rows with COPY on the
session's own connection, in the session's transaction: at a million items the
INSERT statements' round trips and SQL parsing were most of the load. It takes ids
from the tables' own sequences first (nextval, so the next publish gets a fresh id)
and so can compute every hash and chain head before writing anything: firms go in
with their chain head set, with no UPDATE afterwards. The rows, hashes and ids are
the same as the services' for the same input — tests/test_demo.py compares a
PostgreSQL load with a SQLite one — and the same audit events and bulk-load hook are
recorded, so derived state (anomaly scan, search index, bulk download) follows as
after any bulk load.

Indexes and unique constraints stay in place during the COPY. The foreign keys of the
tables it fills are dropped at the start and added again at the end, in the same
transaction and from their own definitions (pg_get_constraintdef): checked row by row
they were half the database's work (100,000 items: 26 s -> 15 s), added again they are
checked in one pass of a second or two. A failed load rolls back to the schema as it
was. The ALTER TABLEs lock the tables until commit, which suits what the demo is — a
load into a fresh, otherwise unused registry.
"""
from __future__ import annotations

from typing import Callable

from flask_babel import lazy_gettext as _l
from sqlalchemy import text
from sqlalchemy.orm import Session

from .. import codes, credit_code
from ..models import PUBLISHED_FIELDS
from ..models.types import utcnow
from ..services import audit, firms as firm_service, hooks, registry
from ..services.errors import InvalidInput, PermissionDenied
from ..services.registry import PastItem

#: The tables COPY fills; their foreign keys are checked once, at the end.
COPIED_TABLES = ("firm", "firm_port", "fee_item", "fee_item_version")
#: Analysed once the load is done.
BIG_TABLES = (*COPIED_TABLES, "audit_event")

_FIRM_COLUMNS = ("id", "credit_code", "name_zh", "name_en", "category", "contact_phone", "contact_email",
                 "status", "status_reason", "created_at", "chain_seq", "chain_head")
_ITEM_COLUMNS = ("id", "firm_id", *PUBLISHED_FIELDS, "status", "has_draft", "created_at", "updated_at",
                 "lock_version")
_VERSION_COLUMNS = ("id", "item_id", "firm_id", "seq", "kind", *PUBLISHED_FIELDS, "effective_from",
                    "superseded_from", "published_at", "published_by_id", "reason", "prev_hash", "hash")


def writer_for(session: Session, actor) -> "ServiceWriter":
    if session.get_bind().dialect.name == "postgresql":
        return CopyWriter(session, actor)
    return ServiceWriter(session, actor)


class ServiceWriter:
    """Through the services' bulk writers: INSERT statements, firms first."""

    def __init__(self, session: Session, actor):
        self.session, self.actor = session, actor

    def firm_ids(self, rows: list[dict]) -> list[int]:
        return firm_service.create_firms(self.session, rows, self.actor)

    def write(self, rows: list[dict], items: list[PastItem], phase: Callable[[str], None]) -> int:
        phase("history")
        return registry.load_history(self.session, items, self.actor)

    def finish(self) -> None:
        """Nothing to do: the statements kept the planner's statistics as they went."""


class CopyWriter(ServiceWriter):
    """COPY into PostgreSQL on the session's connection, ids drawn from the sequences."""

    def __init__(self, session: Session, actor):
        super().__init__(session, actor)
        if actor is None or actor.role != "admin":
            raise PermissionDenied(_l("Only an operator can load history in bulk."))
        self._firm_ids: list[int] = []
        self._foreign_keys: list[tuple[str, str, str]] | None = None

    def firm_ids(self, rows: list[dict]) -> list[int]:
        self._firm_ids = self._reserve("firm", len(rows))
        return self._firm_ids

    def _reserve(self, table: str, count: int) -> list[int]:
        if not count:
            return []
        return sorted(self.session.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table, "n": count}).scalars())

    def write(self, rows: list[dict], items: list[PastItem], phase: Callable[[str], None]) -> int:
        phase("hashes")
        firm_ids = self._firm_ids
        # As stored (normalised): `feereg verify` hashes with the stored code.
        codes_by_id = {firm_id: credit_code.validate(values["credit_code"]) for firm_id, values in zip(firm_ids, rows)}
        item_ids = self._reserve("fee_item", len(items))
        item_rows = [_item_row(item_id, entry) for item_id, entry in zip(item_ids, items)]
        # Every firm here starts with an empty chain.
        version_rows, heads = registry.chained_version_rows(
            items, item_ids, {firm_id: (0, "", code) for firm_id, code in codes_by_id.items()},
            getattr(self.actor, "id", None))
        version_ids = self._reserve("fee_item_version", len(version_rows))
        for version_id, row in zip(version_ids, version_rows):
            row["id"] = version_id
        firm_rows, port_rows = _firm_rows(firm_ids, rows, heads)

        phase("copy")
        if self._foreign_keys is None:
            self._foreign_keys = _drop_foreign_keys(self.session)
        cursor = self.session.connection().connection.driver_connection.cursor()
        _copy(cursor, "firm", _FIRM_COLUMNS, firm_rows)
        _copy(cursor, "firm_port", ("firm_id", "port"), port_rows)
        _copy(cursor, "fee_item", _ITEM_COLUMNS, item_rows)
        _copy(cursor, "fee_item_version", _VERSION_COLUMNS, version_rows)
        # The services' own records of a bulk load, which the snapshot and the bulk
        # download follow (firms.load) and an auditor reads.
        audit.record(self.session, "firms.load", self.actor, None, None, count=len(firm_rows))
        audit.record(self.session, "items.load_history", self.actor, None, None, items=len(items),
                     versions=len(version_rows), firms=len(heads))
        hooks.bulk_loaded(self.session)
        return len(version_rows)

    def finish(self) -> None:
        """Put the foreign keys back (checking every row) and give the planner statistics
        for the new rows (ANALYZE sees this transaction's own rows)."""
        self.session.flush()
        for table, name, definition in self._foreign_keys or ():
            self.session.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
        self._foreign_keys = None
        self.session.execute(text("ANALYZE " + ", ".join(BIG_TABLES)))


def _drop_foreign_keys(session: Session) -> list[tuple[str, str, str]]:
    """Drop the foreign keys of the tables COPY fills; return what adds them again."""
    found = [tuple(row) for row in session.execute(text(
        "SELECT quote_ident(t.relname), quote_ident(c.conname), pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
        "WHERE c.contype = 'f' AND t.oid = ANY(CAST(:tables AS regclass[])) ORDER BY 1, 2"),
        {"tables": list(COPIED_TABLES)})]
    for table, name, _ in found:
        session.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
    return found


def _copy(cursor, table: str, columns: tuple[str, ...], rows: list) -> None:
    if not rows:
        return
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row if isinstance(row, tuple) else tuple(row[name] for name in columns))


def _firm_rows(firm_ids: list[int], rows: list[dict], heads: dict[int, tuple[int, str]]):
    """The rows firms.create_firms writes, with the same checks, and the chain heads set."""
    now = utcnow()
    firm_rows, port_rows = [], []
    for firm_id, values in zip(firm_ids, rows):
        if values["category"] not in codes.CATEGORIES:
            raise InvalidInput(_l("Unknown firm category."))
        unknown = [p for p in values.get("ports") or [] if p not in codes.PORTS]
        if unknown:
            raise InvalidInput(_l("Unknown port %(port)s.", port=unknown[0]))
        seq, head = heads.get(firm_id, (0, ""))
        firm_rows.append((firm_id, credit_code.validate(values["credit_code"]), values["name_zh"].strip(),
                          (values.get("name_en") or "").strip(), values["category"],
                          values.get("contact_phone") or "", values.get("contact_email") or "",
                          "active", "", now, seq, head))
        port_rows.extend((firm_id, port) for port in sorted(set(values.get("ports") or [])))
    return firm_rows, port_rows


def _item_row(item_id: int, entry: PastItem) -> dict:
    # As registry.load_history writes it: the working copy is the last version's values.
    first, last = entry.versions[0], entry.versions[-1]
    return {"id": item_id, "firm_id": entry.firm_id, **{name: last.values[name] for name in PUBLISHED_FIELDS},
            "status": "withdrawn" if last.kind == "withdraw" else "published", "has_draft": False,
            "created_at": first.published_at, "updated_at": last.published_at, "lock_version": 1}
