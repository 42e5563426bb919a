from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import utcnow

#: warning → rectification (with a deadline) → closed; a warning may also be closed directly.
CASE_STATUSES = ("warning", "rectification", "closed")


class ComplianceCase(db.Model):
    """A regulator's case against one firm's disclosure: a warning, then rectification by a
    deadline, then closed. At most one case per firm is not closed (the service keeps this).
    Every step is a ComplianceStep row (and an AuditEvent), so the firm sees the whole path."""

    __tablename__ = "compliance_case"
    __table_args__ = (Index("ix_compliance_case_firm_status", "firm_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id"))
    #: warning, rectification, closed.
    status: Mapped[str] = mapped_column(String(16), default="warning", index=True)
    #: Why the case was opened: shown to the firm.
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The rectification deadline (a Shenzhen date), set when rectification is ordered.
    deadline: Mapped[date | None]
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    firm = relationship("Firm")
    opened_by = relationship("User", foreign_keys="ComplianceCase.opened_by_id")
    steps: Mapped[list["ComplianceStep"]] = relationship(
        back_populates="case", order_by="ComplianceStep.id", cascade="all, delete-orphan")

    @property
    def is_open(self) -> bool:
        return self.status != "closed"


class ComplianceStep(db.Model):
    """One step of a compliance case, in order: the status it moved to, the note, the deadline."""

    __tablename__ = "compliance_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("compliance_case.id", ondelete="CASCADE"), index=True)
    #: The status the case moved to (warning, rectification, closed).
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[date | None]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[ComplianceCase] = relationship(back_populates="steps")
    actor = relationship("User")
