from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import Money, utcnow

COMPLAINT_STATUSES = ("received", "forwarded", "answered", "closed")


class Complaint(db.Model):
    """A shipper's complaint about a charge, handled in a loop: received → forwarded to
    the firm → answered by it → closed by the regulator. Each step keeps its time, so the
    time to closure can be reported."""

    __tablename__ = "complaint"
    __table_args__ = (Index("ix_complaint_firm_status", "firm_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id"))
    #: The published item it is about, when the shipper could name one.
    item_id: Mapped[int | None] = mapped_column(ForeignKey("fee_item.id"))
    #: What was charged, in the words of the invoice (e.g. 换单费).
    fee_name: Mapped[str] = mapped_column(String(200))
    #: The catalog type the name maps to ("" when it maps to none).
    fee_type_code: Mapped[str] = mapped_column(String(32), default="")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    charged_on: Mapped[date]
    #: What happened, and the evidence (invoice number, lines) as text.
    description: Mapped[str] = mapped_column(Text, default="")
    #: How to reach the complainant (name, phone or e-mail); never shown publicly.
    contact: Mapped[str] = mapped_column(String(200), default="")
    #: received, forwarded, answered, closed.
    status: Mapped[str] = mapped_column(String(16), default="received", index=True)
    firm_answer: Mapped[str] = mapped_column(Text, default="")
    regulator_conclusion: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    forwarded_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    firm = relationship("Firm")
    item = relationship("FeeItem")
