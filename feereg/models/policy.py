from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import Money, utcnow

#: abolish: the fee may no longer be charged; merge: folded into `replaced_by`;
#: cap: a maximum (set or changed) for government-priced fees or capped sub-items;
#: official_rate: the one rate a pass-through fee is collected at.
POLICY_KINDS = ("abolish", "merge", "cap", "official_rate")


class PolicyNotice(db.Model):
    """A dated policy change that the anomaly rules apply: policy as data, not code edits.

    A notice is in force from `effective_from` until a later notice of the same kind and
    scope replaces it, so caps and official rates are dated.
    """

    __tablename__ = "policy_notice"
    __table_args__ = (Index("ix_policy_notice_type_effective", "fee_type_code", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    fee_type_code: Mapped[str] = mapped_column(String(32), ForeignKey("fee_type.code"))
    #: Optional scope; "" means every unit / container size / port.
    unit: Mapped[str] = mapped_column(String(32), default="")
    container_size: Mapped[str] = mapped_column(String(8), default="")
    port: Mapped[str] = mapped_column(String(16), default="")
    #: The cap or official rate (cap and official_rate only).
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: merge: the fee type that absorbed this one.
    replaced_by: Mapped[str] = mapped_column(String(32), default="")
    effective_from: Mapped[date]
    #: The document it comes from, e.g. 交水规〔2019〕2号.
    reference: Mapped[str] = mapped_column(String(200), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by = relationship("User")
    fee_type = relationship("FeeType", foreign_keys="PolicyNotice.fee_type_code", viewonly=True)

    @property
    def specificity(self) -> int:
        """How narrowly it is scoped: a narrower notice wins over a broader one."""
        return bool(self.unit) + bool(self.container_size) + bool(self.port)
