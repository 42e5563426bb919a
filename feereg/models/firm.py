from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import utcnow


def firm_display_name(name_zh: str, name_en: str, locale: str) -> str:
    """A firm's name in the reader's language: the English one where there is one."""
    return name_en if locale.startswith("en") and name_en else name_zh


class Firm(db.Model):
    __tablename__ = "firm"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 统一社会信用代码, normalised and check-digit valid (GB 32100-2015).
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(32), index=True)
    contact_phone: Mapped[str] = mapped_column(String(64), default="")
    contact_email: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Head of this firm's version hash chain; a deleted tail version shows as a mismatch.
    chain_seq: Mapped[int] = mapped_column(default=0)
    chain_head: Mapped[str] = mapped_column(String(64), default="")

    ports: Mapped[list["FirmPort"]] = relationship(
        back_populates="firm", cascade="all, delete-orphan", order_by="FirmPort.port"
    )

    @property
    def port_codes(self) -> list[str]:
        return [p.port for p in self.ports]

    @property
    def is_suspended(self) -> bool:
        return self.status == "suspended"

    def display_name(self, locale: str) -> str:
        return firm_display_name(self.name_zh, self.name_en, locale)


class FirmPort(db.Model):
    __tablename__ = "firm_port"
    __table_args__ = (Index("ix_firm_port_port", "port", "firm_id"),)

    firm_id: Mapped[int] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), primary_key=True)
    port: Mapped[str] = mapped_column(String(16), primary_key=True)

    firm: Mapped[Firm] = relationship(back_populates="ports")
