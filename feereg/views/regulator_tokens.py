"""A regulator's tokens for the open data API: create one (shown once), revoke one. On the
regulator blueprint."""
from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..forms.api_tokens import NewTokenForm, RevokeTokenForm
from ..models import ApiToken
from ..services import api_tokens
from .regulator import bp
from .util import run_service


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    form = NewTokenForm()
    created = None
    if form.validate_on_submit():
        outcome = run_service(lambda: api_tokens.create_token(db.session, current_user, form.name.data))
        if outcome.ok:
            created = outcome.value  # (token, clear): the clear token is on this page and nowhere else
            form = NewTokenForm(formdata=None)
    response = make_response(render_template(
        "regulator/tokens.html", form=form, revoke_form=RevokeTokenForm(), created=created,
        tokens=api_tokens.tokens_of(db.session, current_user)))
    # The page may hold a token in clear: no cache keeps it.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    if RevokeTokenForm().validate_on_submit():
        if run_service(lambda: api_tokens.revoke_token(db.session, token, current_user)).ok:
            flash(_("Token “%(name)s” revoked: it no longer opens the API.", name=token.name), "success")
    return redirect(url_for("regulator.tokens"))
