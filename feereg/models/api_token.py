from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import utcnow


class ApiToken(db.Model):
    """A bearer token for the regulator endpoints of the open data API.

    Only the token's SHA-256 is kept: the token itself is shown once, when it is created
    (feereg/services/api_tokens.py), and a database dump cannot be replayed against the API.
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    #: What the holder calls it, e.g. "weekly audit script".
    name: Mapped[str] = mapped_column(String(100))
    #: Hex SHA-256 of the token; looked up on every API request.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Updated at most once a minute, so reads do not each become a write.
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user = relationship("User")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
