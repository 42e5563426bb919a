"""Logging in and out, and registering a firm with its first publisher account."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import db, limiter
from ..forms.account import LoginForm, RegisterFirmForm
from ..i18n import current_language
from ..services import accounts, audit, firms
from .util import run_service

bp = Blueprint("account", __name__)


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _home_for(user) -> str:
    if user.role == "publisher":
        return url_for("publisher.schedule")
    if user.role == "regulator":
        return url_for("regulator.dashboard")
    return url_for("admin.firms_list")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(db.session, form.email.data, form.password.data)
        except accounts.LoginRefused as exc:
            db.session.commit()  # keep the failure count and the audit record
            flash(str(exc), "error")
        else:
            db.session.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or _home_for(user))
    return render_template("account/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    audit.record(db.session, "logout", current_user, current_user)
    db.session.commit()
    logout_user()
    flash(_("You are logged out."), "info")
    return redirect(url_for("public.home"))


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit("10 per hour", methods=["POST"])
def register():
    form = RegisterFirmForm(current_language())
    if form.validate_on_submit():
        values = {k: getattr(form, k).data for k in (
            "credit_code", "name_zh", "name_en", "category", "ports", "contact_phone", "contact_email")}
        outcome = run_service(lambda: firms.register_firm(db.session, values, form.email.data, form.password.data,
                                                          name=form.name.data))
        if outcome.ok:
            firm, user = outcome.value
            login_user(user)
            flash(_("%(firm)s is registered. Add your fee items, or import a file.", firm=firm.name_zh), "success")
            return redirect(url_for("publisher.schedule"))
    return render_template("account/register.html", form=form)
