"""Audit events: one function, so every record has the same shape."""
from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy.orm import Session

from ..models import AuditEvent


def record(session: Session, action: str, actor=None, subject=None, firm_id=None, **detail) -> AuditEvent:
    # current_user is a proxy: record the user it stands for, not "LocalProxy".
    subject = subject._get_current_object() if hasattr(subject, "_get_current_object") else subject
    ip = ""
    if has_request_context():
        ip = request.remote_addr or ""
    event = AuditEvent(
        action=action,
        actor_id=getattr(actor, "id", None),
        subject_type=type(subject).__name__ if subject is not None else "",
        subject_id=getattr(subject, "id", None),
        firm_id=firm_id,
        detail={k: (str(v) if not isinstance(v, (int, float, bool, list, dict, type(None))) else v)
                for k, v in detail.items()},
        ip=ip,
    )
    session.add(event)
    return event
