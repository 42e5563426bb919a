"""The regulator's casework: complaints from receipt to closure, and firms' compliance cases
(warning → rectification → closed). Routes on the regulator blueprint."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..forms.oversight import StepForm
from ..labels import audit_label
from ..models import Complaint
from ..services import complaints, compliance, reads
from .regulator import bp
from .util import page_arg, run_service


@bp.get("/complaints")
def complaints_list():
    status = request.args.get("status", "open")
    page = reads.paginate(db.session, complaints.listing(status), page_arg(), 50)
    return render_template("regulator/complaints.html", page=page, status=status)


@bp.route("/complaints/<int:complaint_id>", methods=["GET", "POST"])
def complaint(complaint_id: int):
    complaint = db.session.get(Complaint, complaint_id) or abort(404)
    form = StepForm()
    if form.validate_on_submit():
        step = {"forward": complaints.forward, "close": complaints.close}.get(form.step.data) or abort(400)
        if run_service(lambda: step(db.session, complaint, current_user, form.text.data)).ok:
            flash(_("Complaint %(id)s is now %(status)s.", id=complaint.id, status=audit_label("complaint_status", complaint.status)), "success")
            return redirect(url_for("regulator.complaint", complaint_id=complaint.id))
    return render_template("regulator/complaint.html", complaint=complaint, form=form,
                           steps=complaints.allowed_steps(complaint, current_user),
                           flags=complaints.flags_of(db.session, complaint))


@bp.get("/compliance")
def compliance_cases():
    return render_template("regulator/compliance.html", cases=compliance.open_cases(db.session))


@bp.route("/firms/<code>/compliance", methods=["GET", "POST"])
def firm_compliance(code: str):
    firm = reads.firm_by_code(db.session, code) or abort(404)
    case = compliance.current_case(db.session, firm.id)
    form = StepForm()
    if form.validate_on_submit():
        # Rectification and closing act on the open case; without one they are not offered.
        steps = {
            "warning": lambda: compliance.open_case(db.session, firm, form.text.data, current_user),
            "rectification": case and (lambda: compliance.order_rectification(
                db.session, case, form.deadline.data, form.text.data, current_user)),
            "closed": case and (lambda: compliance.close_case(db.session, case, form.text.data, current_user)),
        }
        action = steps.get(form.step.data) or abort(400)
        if run_service(action).ok:
            flash(_("Compliance case updated."), "success")
            return redirect(url_for("regulator.firm_compliance", code=firm.credit_code))
    return render_template("regulator/firm_compliance.html", firm=firm, case=case, form=form,
                           cases=compliance.cases_of(db.session, firm.id),
                           score=compliance.score(db.session, firm))
