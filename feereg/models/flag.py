from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import utcnow

FLAG_STATUSES = ("open", "confirmed", "dismissed", "resolved")
SEVERITIES = ("high", "medium", "low")


class Flag(db.Model):
    """An anomaly an audit rule found (feereg/services/anomaly_rules.py).

    Identity: `subject` names what the rule judged without the version (e.g. "item:12",
    "items:12:15", "complaint:3"); `fingerprint` adds the version, and is unique, so a
    re-run never duplicates a flag. The checks keep at most one *open* flag per (rule,
    subject): a new version still breaking the rule moves the open flag to it, while a
    regulator's decision (confirmed, dismissed) stays with the version it was made on.
    """

    __tablename__ = "flag"
    __table_args__ = (
        Index("ix_flag_rule_status", "rule", "status"),
        Index("ix_flag_firm_status", "firm_id", "status"),
        Index("ix_flag_subject", "rule", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(32))
    #: high, medium, low (from the rule).
    severity: Mapped[str] = mapped_column(String(16))
    #: open, confirmed, dismissed (by a regulator), resolved (the condition no longer holds).
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id"))
    #: Empty for a charge that matches no published item (UNDISCLOSED).
    item_id: Mapped[int | None] = mapped_column(ForeignKey("fee_item.id"), index=True)
    #: The version judged: the item's latest when the flag was raised or last carried forward.
    version_id: Mapped[int | None] = mapped_column(ForeignKey("fee_item_version.id"))
    #: The complaint (or invoice check turned complaint) that raised it (UNDISCLOSED).
    complaint_id: Mapped[int | None] = mapped_column(ForeignKey("complaint.id"), index=True)
    fee_type_code: Mapped[str] = mapped_column(String(32), default="", index=True)
    subject: Mapped[str] = mapped_column(String(120))
    fingerprint: Mapped[str] = mapped_column(String(200), unique=True)
    #: English, rendered from the rule's message and the evidence; pages show
    #: anomaly_rules.describe(flag) in the reader's language instead.
    explanation: Mapped[str] = mapped_column(Text, default="")
    #: The numbers behind it: peer median, ratio, cap, notice days, the duplicate items...
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    firm_answer: Mapped[str] = mapped_column(Text, default="")
    firm_answered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    firm = relationship("Firm")
    item = relationship("FeeItem")
    version = relationship("FeeItemVersion")
    complaint = relationship("Complaint", foreign_keys="Flag.complaint_id")
    reviewer = relationship("User")

    @property
    def is_open(self) -> bool:
        return self.status == "open"
