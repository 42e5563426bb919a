from __future__ import annotations

from datetime import date

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..codes import split_list
from ..extensions import db


class FeeType(db.Model):
    """A standard fee type of the catalog (seeded from fee_catalog.csv, edited by admins)."""

    __tablename__ = "fee_type"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    #: Other names and codes firms use, ';'-separated; used for search and import mapping.
    aliases: Mapped[str] = mapped_column(Text, default="")
    group: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(32))
    pricing_basis: Mapped[str] = mapped_column(String(32))
    #: Collected on the government's behalf: no mark-up is allowed.
    pass_through: Mapped[bool] = mapped_column(default=False)
    #: Firm categories that may legitimately charge it, ';'-separated.
    charged_by: Mapped[str] = mapped_column(Text, default="")
    abolished_from: Mapped[date | None]
    replaced_by: Mapped[str] = mapped_column(String(32), default="")
    policy_note: Mapped[str] = mapped_column(Text, default="")

    @property
    def alias_list(self) -> list[str]:
        return split_list(self.aliases)

    @property
    def charged_by_list(self) -> list[str]:
        return split_list(self.charged_by)

    def display_name(self, locale: str) -> str:
        return self.name_en if locale.startswith("en") else self.name_zh
