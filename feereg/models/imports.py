from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import utcnow


class PendingImport(db.Model):
    """An uploaded file waiting for the publisher to confirm its preview.

    Kept in the database, not on local disk, so any application server can confirm it.
    """

    __tablename__ = "pending_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    firm_id: Mapped[int | None] = mapped_column(ForeignKey("firm.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: pending, applied, discarded
    status: Mapped[str] = mapped_column(String(16), default="pending")
