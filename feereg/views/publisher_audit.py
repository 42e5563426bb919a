"""The firm's side of the audit loop: confirmed flags on its items and complaints forwarded to
it, each with its answer, and its compliance case. Routes on the publisher blueprint, whose
before_request already refuses anyone but a publisher bound to a firm."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..forms.oversight import AnswerForm
from ..models import Complaint, Flag
from ..services import complaints, compliance, reads, reviews
from .publisher import bp, own
from .util import page_arg, run_service


@bp.get("/audit")
def audit():
    """Confirmed flags on the firm's items, its compliance cases and its score."""
    firm = current_user.firm
    flags = list(db.session.scalars(select(Flag).where(Flag.firm_id == firm.id, Flag.status == "confirmed")
                                    .order_by(Flag.decided_at.desc(), Flag.id.desc())))
    return render_template("publisher/audit.html", firm=firm, flags=flags, form=AnswerForm(),
                           cases=compliance.cases_of(db.session, firm.id), score=compliance.score(db.session, firm))


@bp.post("/flags/<int:flag_id>/answer")
def answer_flag(flag_id: int):
    flag = own(Flag, flag_id)
    form = AnswerForm()
    if form.validate_on_submit():
        if run_service(lambda: reviews.answer_flag(db.session, flag, form.answer.data, current_user)).ok:
            flash(_("Your answer is recorded."), "success")
    else:
        flash(_("Write your answer."), "error")
    return redirect(url_for("publisher.audit") + f"#flag-{flag.id}")


@bp.get("/complaints")
def complaints_list():
    page = reads.paginate(db.session, complaints.for_firm(db.session, current_user.firm_id), page_arg(), 50)
    return render_template("publisher/complaints.html", firm=current_user.firm, page=page)


@bp.route("/complaints/<int:complaint_id>", methods=["GET", "POST"])
def complaint(complaint_id: int):
    complaint = own(Complaint, complaint_id)
    if complaint.forwarded_at is None:
        abort(404)  # still with the regulator
    form = AnswerForm()
    if form.validate_on_submit():
        if run_service(lambda: complaints.answer(db.session, complaint, current_user, form.answer.data)).ok:
            flash(_("Your answer is recorded."), "success")
            return redirect(url_for("publisher.complaint", complaint_id=complaint.id))
    return render_template("publisher/complaint.html", firm=current_user.firm, complaint=complaint, form=form,
                           steps=complaints.allowed_steps(complaint, current_user))
