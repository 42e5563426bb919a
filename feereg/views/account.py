"""Logging in and out, changing one's password, and registering a firm with its first
publisher account. Login is throttled per client address and per account (the e-mail typed,
whether or not it exists), on top of the account lock-out in services/accounts.py."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import login_sessions
from ..extensions import configured_limit, db, limiter
from ..forms.account import LoginForm, PasswordForm, RegisterFirmForm
from ..i18n import current_language
from ..services import accounts, audit, firms
from ..services.errors import InvalidInput
from .util import run_service

bp = Blueprint("account", __name__)


def _safe_next(target: str | None) -> str | None:
    # Only same-site paths: an open redirect after login is a phishing aid.
    # Browsers drop tabs and newlines from URLs ("/\t/evil.example" is "//evil.example").
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target \
            and not any(ord(c) < 33 or ord(c) == 127 for c in target):
        return target
    return None


def _home_for(user) -> str:
    if user.role == "publisher":
        return url_for("publisher.schedule")
    if user.role == "regulator":
        return url_for("regulator.dashboard")
    return url_for("admin.firms_list")


def _account_key() -> str:
    # The account as the service finds it: case and spaces do not buy a new allowance.
    return "account:" + (request.form.get("email") or "").strip().lower()[:200]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(configured_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
@limiter.limit(configured_limit("LOGIN_ACCOUNT_RATE_LIMIT"), methods=["POST"], key_func=_account_key)
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
            login_sessions.begin(user)
            return redirect(_safe_next(request.args.get("next")) or _home_for(user))
    return render_template("account/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    audit.record(db.session, "logout", current_user, current_user)
    db.session.commit()
    login_sessions.end()
    flash(_("You are logged out."), "info")
    return redirect(url_for("public.home"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit(configured_limit("LOGIN_RATE_LIMIT"), methods=["POST"])
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            accounts.change_password(db.session, user, form.current.data, form.password.data)
        except accounts.WrongPassword as exc:
            db.session.rollback()
            form.current.errors = [str(exc)]
        except InvalidInput as exc:
            db.session.rollback()
            form.password.errors = [str(e) for e in exc.errors] or [str(exc)]
        else:
            db.session.commit()
            login_sessions.begin(user)  # a new session, stamped with the new password
            flash(_("Your password is changed; your other sessions are logged out."), "success")
            return redirect(_home_for(user))
    return render_template("account/password.html", form=form)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(configured_limit("REGISTER_RATE_LIMIT"), methods=["POST"])
def register():
    form = RegisterFirmForm(current_language())
    if form.validate_on_submit():
        values = {k: getattr(form, k).data for k in (
            "credit_code", "name_zh", "name_en", "category", "ports", "contact_phone", "contact_email")}
        outcome = run_service(lambda: firms.register_firm(db.session, values, form.email.data, form.password.data,
                                                          name=form.name.data))
        if outcome.ok:
            firm, user = outcome.value
            login_sessions.begin(user)
            flash(_("%(firm)s is registered. Add your fee items, or import a file.", firm=firm.name_zh), "success")
            return redirect(url_for("publisher.schedule"))
    return render_template("account/register.html", form=form)
