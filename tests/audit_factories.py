"""Factories for the audit tests: flags written directly (the rules have their own tests),
so counts and filters can be asserted exactly."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from feereg.extensions import db
from feereg.models import Flag
from feereg.models.types import utcnow

_n = itertools.count(1)


def make_flag(firm, rule: str = "PEER_OUTLIER", severity: str = "medium", status: str = "open", item=None,
              evidence: dict | None = None, created_at: datetime | None = None, **kw) -> Flag:
    n = next(_n)
    flag = Flag(rule=rule, severity=severity, status=status, firm_id=firm.id, item_id=item.id if item else None,
                version_id=item.versions[-1].id if item is not None and item.versions else None,
                fee_type_code=kw.pop("fee_type_code", item.fee_type_code if item else ""),
                subject=f"test:{n}", fingerprint=f"{rule}|test:{n}|v0", explanation=f"test flag {n}",
                evidence=evidence or {}, note="", firm_answer="", created_at=created_at or utcnow(), **kw)
    db.session.add(flag)
    db.session.flush()
    return flag


def weeks_ago(n: int) -> datetime:
    return utcnow() - timedelta(weeks=n)
