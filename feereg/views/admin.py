"""Operators (role `admin`): firms and their status, user accounts."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..forms.admin import FirmStatusForm, UserActiveForm
from ..models import Firm, User
from ..services import audit, reads
from ..services import firms as firms_service
from ..web import role_required
from .util import page_arg, run_service

bp = Blueprint("admin", __name__)


@bp.before_request
@role_required("admin")
def require_admin():
    return None


@bp.get("/firms")
def firms_list():
    q = (request.args.get("q") or "")[:100]
    status = request.args.get("status", "")
    page = reads.firm_directory(db.session, q=q, status=status if status in ("active", "suspended") else "",
                                page=page_arg())
    return render_template("admin/firms.html", page=page, q=q, status=status)





@bp.route("/firms/<int:firm_id>", methods=["GET", "POST"])
def firm_status(firm_id: int):
    firm = db.session.get(Firm, firm_id) or abort(404)
    form = FirmStatusForm(status=firm.status, reason=firm.status_reason)
    if form.validate_on_submit():
        if run_service(lambda: firms_service.set_status(db.session, firm, form.status.data, form.reason.data or "",
                                                        current_user)).ok:
            flash(_("Saved."), "success")
            return redirect(url_for("admin.firms_list"))
    users = list(db.session.scalars(select(User).where(User.firm_id == firm.id)))
    return render_template("admin/firm.html", firm=firm, form=form, users=users)


@bp.get("/users")
def users():
    page = reads.paginate(db.session, select(User).order_by(User.role, User.email), page_arg(), 100)
    return render_template("admin/users.html", page=page, form=UserActiveForm())


@bp.post("/users/<int:user_id>")
def user_active(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = UserActiveForm()
    if form.validate_on_submit():
        if user.id == current_user.id:
            flash(_("You cannot disable your own account."), "error")
        else:
            user.active = form.action.data == "enable"
            audit.record(db.session, "user.enable" if user.active else "user.disable", current_user, user, user.firm_id)
            db.session.commit()
            flash(_("Saved."), "success")
    return redirect(url_for("admin.users"))

