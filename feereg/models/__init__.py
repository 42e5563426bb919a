"""The models, re-exported so Alembic and the services see one metadata."""
from .audit import AuditEvent
from .catalog import FeeType
from .fee import PUBLISHED_FIELDS, FeeItem, FeeItemVersion
from .firm import Firm, FirmPort
from .imports import PendingImport
from .user import User

__all__ = [
    "AuditEvent", "FeeType", "FeeItem", "FeeItemVersion", "PUBLISHED_FIELDS",
    "Firm", "FirmPort", "PendingImport", "User",
]
