"""Column helpers shared by the models."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Numeric
from sqlalchemy.orm import mapped_column

#: Money: 14 digits, 2 places; always Decimal in Python, never float.
Money = Numeric(14, 2, asdecimal=True)


def utcnow() -> datetime:
    """Naive UTC, microseconds kept: stored the same on SQLite and PostgreSQL."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def money_column(**kw):
    return mapped_column(Money, **kw)


__all__ = ["Money", "utcnow", "money_column", "Decimal"]
