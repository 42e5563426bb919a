"""The models, re-exported so Alembic and the services see one metadata."""
from .api_token import ApiToken
from .audit import AuditEvent
from .catalog import FeeType
from .complaint import COMPLAINT_STATUSES, Complaint
from .compliance import CASE_STATUSES, ComplianceCase, ComplianceStep
from .fee import PUBLISHED_FIELDS, FeeItem, FeeItemVersion
from .firm import Firm, FirmPort
from .flag import FLAG_STATUSES, SEVERITIES, Flag
from .imports import PendingImport
from .job import JOB_STATES, Job
from .policy import POLICY_KINDS, PolicyNotice
from .user import User

__all__ = [
    "ApiToken",
    "AuditEvent", "FeeType", "FeeItem", "FeeItemVersion", "PUBLISHED_FIELDS",
    "Firm", "FirmPort", "PendingImport", "User",
    "Complaint", "COMPLAINT_STATUSES", "Flag", "FLAG_STATUSES", "SEVERITIES", "PolicyNotice", "POLICY_KINDS",
    "ComplianceCase", "ComplianceStep", "CASE_STATUSES", "Job", "JOB_STATES",
]
