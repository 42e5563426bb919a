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
from ..services.errors import ServiceError
from .regulator import bp
from .util import page_arg


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
        try:
            if form.step.data == "forward":
                complaints.forward(db.session, complaint, current_user, form.text.data)
            elif form.step.data == "close":
                complaints.close(db.session, complaint, current_user, form.text.data)
            else:
                abort(400)
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
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
        try:
            if form.step.data == "warning":
                compliance.open_case(db.session, firm, form.text.data, current_user)
            elif form.step.data == "rectification" and case is not None:
                compliance.order_rectification(db.session, case, form.deadline.data, form.text.data, current_user)
            elif form.step.data == "closed" and case is not None:
                compliance.close_case(db.session, case, form.text.data, current_user)
            else:
                abort(400)
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("Compliance case updated."), "success")
            return redirect(url_for("regulator.firm_compliance", code=firm.credit_code))
    return render_template("regulator/firm_compliance.html", firm=firm, case=case, form=form,
                           cases=compliance.cases_of(db.session, firm.id),
                           score=compliance.score(db.session, firm))
