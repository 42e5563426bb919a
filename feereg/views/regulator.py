"""The regulator's workspace (role `regulator`): what changed, who is suspended, the audit log."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from sqlalchemy import select

from ..extensions import db
from ..models import AuditEvent, Firm
from ..services import reads
from ..web import role_required
from .util import page_arg

bp = Blueprint("regulator", __name__)


@bp.before_request
@role_required("regulator", "admin")
def require_regulator():
    return None


@bp.get("/")
def dashboard():
    suspended = list(db.session.scalars(select(Firm).where(Firm.status == "suspended").order_by(Firm.name_zh)))
    return render_template("regulator/dashboard.html", figures=reads.registry_figures(db.session),
                           changes=reads.latest_changes(db.session, 30), suspended=suspended)


@bp.get("/audit")
def audit_log():
    action = (request.args.get("action") or "")[:64]
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action))
    page = reads.paginate(db.session, stmt, page_arg(), 100)
    return render_template("regulator/audit.html", page=page, action=action)
