"""The regulator's workspace (role `regulator`; admins may look in): the dashboard of flags and
complaints, the flags and a decision on each, policy notices, the audit report, the audit log.
Complaints and compliance cases are in regulator_cases.py, on the same blueprint."""
from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import charts
from ..exports.csv import csv_bytes
from ..extensions import db
from ..forms.oversight import FlagDecisionForm, PolicyNoticeForm, ReportForm
from ..i18n import current_language
from ..labels import audit_label
from ..models import AuditEvent, Complaint, Flag, PolicyNotice
from ..services import audit_report, checks, history, oversight, reads, reviews
from ..services.anomaly_rules import RULES, describe
from ..services.catalog import CatalogIndex
from ..services.registry import today
from ..web import role_required
from .util import page_arg, run_service

bp = Blueprint("regulator", __name__)


@bp.before_request
@role_required("regulator", "admin")
def require_regulator():
    return None


@bp.app_template_global()
def flag_text(flag) -> str:
    """A flag's explanation in the reader's language."""
    return describe(flag)


@bp.app_template_filter("readable_json")
def readable_json(value) -> str:
    """An audit event's detail as JSON a reader can read: Chinese as written, not \\u escapes."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@bp.get("/")
def dashboard():
    f = oversight.FlagFilter.from_args(request.args)
    board = oversight.dashboard(db.session, f, today())
    trend = charts.bar_chart([(week.strftime("%m-%d"), n) for week, n in board.trend])
    return render_template("regulator/dashboard.html", f=f, board=board, trend=trend, rules=list(RULES))


@bp.get("/flags")
def flags():
    f = oversight.FlagFilter.from_args(request.args)
    page = reads.paginate(db.session, oversight.flags_query(f), page_arg(), 50)
    return render_template("regulator/flags.html", f=f, page=page, rules=list(RULES))


@bp.route("/flags/<int:flag_id>", methods=["GET", "POST"])
def flag(flag_id: int):
    flag = db.session.get(Flag, flag_id) or abort(404)
    form = FlagDecisionForm()
    if form.validate_on_submit():
        if run_service(lambda: reviews.decide_flag(db.session, flag, form.decision.data, form.note.data,
                                                   current_user)).ok:
            flash(_("Flag %(id)s %(status)s.", id=flag.id, status=audit_label("flag_status", flag.status)), "success")
            return redirect(url_for("regulator.flag", flag_id=flag.id))
    versions = history.item_history(db.session, flag.item_id) if flag.item_id else []
    return render_template("regulator/flag.html", flag=flag, form=form, versions=versions,
                           peers=oversight.peers_of(db.session, flag),
                           complaint=db.session.get(Complaint, flag.complaint_id) if flag.complaint_id else None)


@bp.route("/policy", methods=["GET", "POST"])
def policy():
    catalog = CatalogIndex.load(db.session)
    form = PolicyNoticeForm(list(catalog.types.values()), current_language())
    if form.validate_on_submit():
        outcome = run_service(lambda: checks.record_policy_notice(db.session, form.values, current_user))
        if outcome.ok:
            _notice, report = outcome.value
            flash(_("Policy notice recorded; %(items)s items re-checked: %(raised)s flags raised, %(resolved)s "
                    "resolved.", items=report.items, raised=report.raised, resolved=report.resolved), "success")
            return redirect(url_for("regulator.policy"))
    notices = list(db.session.scalars(select(PolicyNotice).order_by(PolicyNotice.effective_from.desc(),
                                                                    PolicyNotice.id.desc())))
    return render_template("regulator/policy.html", form=form, notices=notices)


def _report_filter(form: ReportForm):
    firm = None
    if form.firm.data and not form.firm.errors:  # a refused value (control characters) is not looked up
        firm = reads.firm_by_code(db.session, form.firm.data)
        if firm is None:
            form.firm.errors = [_("No firm has this credit code.")]
    # A refused value (a date out of range, an unknown choice) filters nothing: its field shows why.
    def valid(field):
        return None if field.errors else field.data

    f = audit_report.report_filter(valid(form.date_from), valid(form.date_to), valid(form.category) or "", firm,
                                   valid(form.rule) or "", valid(form.status) or "")
    if form.firm.errors:
        f.firm_id = -1  # a mistyped firm reports nothing, never the whole registry
    return f, firm


@bp.get("/report")
def report():
    form = ReportForm(list(RULES), current_language(), request.args)
    form.validate()
    f, firm = _report_filter(form)
    page = reads.paginate(db.session, audit_report.report_query(f), page_arg(), 100)
    return render_template("regulator/report.html", form=form, firm=firm, page=page,
                           summary=audit_report.summary(db.session, f), csv_args=request.args.to_dict())


@bp.get("/report.csv")
def report_csv():
    form = ReportForm(list(RULES), current_language(), request.args)
    form.validate()
    f, _firm = _report_filter(form)
    if form.firm.errors:
        abort(400, description=form.firm.errors[0])
    body = csv_bytes(audit_report.CSV_HEADER, audit_report.csv_rows(db.session, f))
    name = f"feereg-audit-{today().isoformat()}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/audit")
def audit_log():
    action = (request.args.get("action") or "")[:64]
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action))
    page = reads.paginate(db.session, stmt, page_arg(), 100)
    return render_template("regulator/audit.html", page=page, action=action)
