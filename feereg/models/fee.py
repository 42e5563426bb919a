from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from ..extensions import db
from .firm import Firm
from .types import Money, utcnow

#: The fields a firm publishes: copied into each version and covered by its hash.
PUBLISHED_FIELDS = (
    "fee_type_code", "fee_code", "name_zh", "name_en", "unit", "container_size",
    "cargo_scope", "trade", "direction", "amount", "currency", "tax_included",
    "tax_rate", "tiers", "pricing_basis", "service_content", "legal_basis", "ports",
)


class PublishedFields:
    """Columns shared by a fee item's working copy and each of its published versions."""

    @declared_attr
    def fee_type_code(cls) -> Mapped[str]:
        return mapped_column(String(32), ForeignKey("fee_type.code"), index=True)

    #: The firm's own code for the fee (optional); identifies the item across imports.
    fee_code: Mapped[str] = mapped_column(String(64), default="")
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(32))
    #: "" means any size / scope / trade / direction.
    container_size: Mapped[str] = mapped_column(String(8), default="")
    cargo_scope: Mapped[str] = mapped_column(String(32), default="")
    trade: Mapped[str] = mapped_column(String(16), default="")
    direction: Mapped[str] = mapped_column(String(16), default="")
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    tax_included: Mapped[bool] = mapped_column(default=True)
    #: Percent, e.g. 6.00; empty where unknown or not applicable.
    tax_rate: Mapped[Decimal | None] = mapped_column(Money)
    #: Canonical tier text for time-based fees: "free:7;8-14:85;15-21:170;22-:340".
    tiers: Mapped[str] = mapped_column(String(400), default="")
    pricing_basis: Mapped[str] = mapped_column(String(32), default="market")
    service_content: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    #: Canonical ';'-joined port codes.
    ports: Mapped[str] = mapped_column(String(400), default="")

    def published_values(self) -> dict:
        return {name: getattr(self, name) for name in PUBLISHED_FIELDS}


class FeeItem(PublishedFields, db.Model):
    """One fee a firm charges. Its columns are the working copy (the draft); what the
    public sees is its latest effective FeeItemVersion."""

    __tablename__ = "fee_item"
    __table_args__ = (Index("ix_fee_item_firm_status", "firm_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id"))
    #: draft (never published), published, withdrawn.
    status: Mapped[str] = mapped_column(String(16), default="draft")
    #: The working copy differs from the latest published version.
    has_draft: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Optimistic lock: a form carries the value it was opened with.
    lock_version: Mapped[int] = mapped_column(default=1)

    firm: Mapped[Firm] = relationship()
    fee_type = relationship("FeeType", foreign_keys="FeeItem.fee_type_code", viewonly=True)
    versions: Mapped[list["FeeItemVersion"]] = relationship(
        back_populates="item", order_by="FeeItemVersion.seq", viewonly=True
    )

    __mapper_args__ = {"version_id_col": lock_version}


class FeeItemVersion(PublishedFields, db.Model):
    """One published change of an item: immutable, and a link in its firm's hash chain."""

    __tablename__ = "fee_item_version"
    __table_args__ = (
        UniqueConstraint("firm_id", "seq", name="uq_fee_item_version_firm_seq"),
        Index("ix_fee_item_version_item_effective", "item_id", "effective_from", "seq"),
        Index("ix_fee_item_version_firm_effective", "firm_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("fee_item.id"))
    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id"))
    #: Position in the firm's chain, 1-based, gapless.
    seq: Mapped[int]
    #: publish or withdraw.
    kind: Mapped[str] = mapped_column(String(16), default="publish")
    effective_from: Mapped[date]
    #: The effective date of the version that follows this one in its item's (effective_from,
    #: seq) order, or empty for the last: the version is in force on D exactly when
    #: effective_from <= D < superseded_from. Derived bookkeeping kept by the registry
    #: service as versions are appended; not published, so not covered by the hash.
    superseded_from: Mapped[date | None]
    published_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    item: Mapped[FeeItem] = relationship(back_populates="versions")
    firm: Mapped[Firm] = relationship()
    published_by = relationship("User")
    fee_type = relationship("FeeType", foreign_keys="FeeItemVersion.fee_type_code", viewonly=True)

    @property
    def is_withdrawal(self) -> bool:
        return self.kind == "withdraw"
