"""The audit report: for a period, a firm category or one firm, the flags raised with their
evidence and the decisions on them — as a page and as CSV (the PDF comes later and will
read the same rows)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..models import Firm, Flag
from .anomaly_rules import describe
from .oversight import FlagFilter, flags_query, narrow

#: The CSV columns, in order (English keys: the file is data, read by programs as well).
CSV_HEADER = ("flag_id", "rule", "severity", "status", "credit_code", "firm", "category", "fee_type", "item_id",
              "version_id", "complaint_id", "raised_at", "explanation", "evidence", "decided_at", "reviewer",
              "note", "firm_answer", "firm_answered_at")


@dataclass
class ReportSummary:
    total: int
    by_status: dict[str, int]
    by_rule: dict[str, int]


def report_filter(date_from: date | None, date_to: date | None, category: str = "", firm: Firm | None = None,
                  rule: str = "", status: str = "") -> FlagFilter:
    return FlagFilter(status=status, rule=rule, category=category, firm_id=firm.id if firm else None,
                      date_from=date_from, date_to=date_to)


def summary(session: Session, f: FlagFilter) -> ReportSummary:
    def grouped(column):
        stmt = select(column, func.count(Flag.id)).select_from(Flag).join(Firm, Firm.id == Flag.firm_id)
        return dict(session.execute(narrow(stmt, f).group_by(column)).all())

    by_status = grouped(Flag.status)
    return ReportSummary(sum(by_status.values()), by_status, grouped(Flag.rule))


def report_query(f: FlagFilter):
    return flags_query(f).options(selectinload(Flag.reviewer))


def csv_rows(session: Session, f: FlagFilter):
    """The CSV rows, streamed in batches (a year of a busy port is many thousand flags)."""
    stmt = report_query(f).execution_options(yield_per=500)
    for flag in session.scalars(stmt):
        firm = flag.firm
        yield (flag.id, flag.rule, flag.severity, flag.status, firm.credit_code, firm.name_zh, firm.category,
               flag.fee_type_code, flag.item_id, flag.version_id, flag.complaint_id, flag.created_at,
               describe(flag), json.dumps(flag.evidence or {}, ensure_ascii=False, sort_keys=True),
               flag.decided_at, flag.reviewer.email if flag.reviewer else "", flag.note, flag.firm_answer,
               flag.firm_answered_at)

