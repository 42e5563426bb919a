"""A firm's own workspace: its schedule with drafts, item forms, publishing, imports."""
from __future__ import annotations

import hashlib

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..forms.publisher import FeeItemForm, ImportConfirmForm, ImportUploadForm, ItemActionForm
from ..i18n import current_language
from ..models import FeeItem
from ..services import history, imports, jobs, registry
from ..services.catalog import CatalogIndex
from ..services.errors import NothingToPublish, ServiceError, StaleItem
from ..web import role_required

bp = Blueprint("publisher", __name__)


@bp.before_request
@role_required("publisher")
def require_publisher():
    if current_user.firm is None:
        abort(403)


def _firm():
    return current_user.firm


def own(model, object_id: int):
    """A row of the publisher's own firm (an item, flag, complaint). Another firm's row is
    "not found", never "forbidden": ids reveal nothing."""
    row = db.session.get(model, object_id)
    if row is None or row.firm_id != current_user.firm_id:
        abort(404)
    return row


def _own_item(item_id: int) -> FeeItem:
    return own(FeeItem, item_id)


@bp.get("/")
def schedule():
    status = request.args.get("status", "")
    stmt = select(FeeItem).where(FeeItem.firm_id == current_user.firm_id)
    if status in ("draft", "published", "withdrawn"):
        stmt = stmt.where(FeeItem.status == status)
    elif status == "unpublished":
        stmt = stmt.where(FeeItem.has_draft.is_(True))
    items = list(db.session.scalars(stmt.order_by(FeeItem.fee_type_code, FeeItem.container_size, FeeItem.id)))
    return render_template("publisher/schedule.html", firm=_firm(), items=items, status=status)


@bp.route("/items/new", methods=["GET", "POST"])
def new_item():
    catalog = CatalogIndex.load(db.session)
    form = FeeItemForm(catalog, current_language())
    if request.method == "GET":
        form.ports.data = _firm().port_codes
        wanted = request.args.get("fee_type")
        if wanted and catalog.get(wanted):
            fee_type = catalog.get(wanted)
            form.fee_type.data, form.unit.data = fee_type.code, fee_type.unit
            form.name_zh.data, form.name_en.data = fee_type.name_zh, fee_type.name_en
            form.pricing_basis.data = fee_type.pricing_basis
    if form.validate_on_submit():
        try:
            item = registry.create_draft(db.session, _firm(), form.cleaned, current_user)
            if form.publish.data:
                registry.publish_item(db.session, item, current_user, form.effective_from.data, form.reason.data or "")
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("Published.") if form.publish.data else _("Draft saved; it is not public until you publish it."), "success")
            return redirect(url_for("publisher.schedule"))
    return render_template("publisher/item_form.html", form=form, item=None, firm=_firm())


@bp.route("/items/<int:item_id>", methods=["GET", "POST"])
def edit_item(item_id: int):
    item = _own_item(item_id)
    catalog = CatalogIndex.load(db.session)
    form = FeeItemForm(catalog, current_language())
    if request.method == "GET":
        form.fill_from(item)
    elif form.validate_on_submit():
        try:
            registry.update_draft(db.session, item, form.cleaned, current_user, form.lock_version.data)
            if form.publish.data:
                registry.publish_item(db.session, item, current_user, form.effective_from.data, form.reason.data or "")
        except StaleItem as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return _conflict(item, form, catalog)
        except ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("Published.") if form.publish.data else _("Draft saved; it is not public until you publish it."), "success")
            return redirect(url_for("publisher.schedule"))
    versions = history.item_history(db.session, item.id)
    return render_template("publisher/item_form.html", form=form, item=item, firm=_firm(), versions=versions)


def _conflict(item: FeeItem, submitted: FeeItemForm, catalog):
    """Show the current values beside what the person tried to save, with a fresh lock."""
    db.session.refresh(item)
    form = FeeItemForm(catalog, current_language(), formdata=None)
    form.fill_from(item)
    versions = history.item_history(db.session, item.id)
    return render_template("publisher/item_form.html", form=form, item=item, firm=_firm(), versions=versions,
                           conflict=submitted), 409


@bp.route("/items/<int:item_id>/<action>", methods=["GET", "POST"])
def item_action(item_id: int, action: str):
    if action not in ("publish", "withdraw", "discard"):
        abort(404)
    item = _own_item(item_id)
    form = ItemActionForm()
    if request.method == "GET":
        form.lock_version.data = item.lock_version
    if form.validate_on_submit():
        try:
            if action == "publish":
                registry.publish_item(db.session, item, current_user, form.effective_from.data,
                                      form.reason.data or "", expected_lock=form.lock_version.data)
                message = _("Published.")
            elif action == "withdraw":
                registry.withdraw_item(db.session, item, current_user, form.effective_from.data,
                                       form.reason.data or "", expected_lock=form.lock_version.data)
                message = _("Withdrawn from %(date)s.", date=form.effective_from.data.isoformat())
            else:
                registry.discard_draft(db.session, item, current_user, expected_lock=form.lock_version.data)
                message = _("Unpublished changes discarded.")
        except (StaleItem, NothingToPublish, ServiceError) as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(message, "success")
            return redirect(url_for("publisher.schedule"))
    return render_template("publisher/item_action.html", form=form, item=item, action=action, firm=_firm())


@bp.route("/import", methods=["GET", "POST"])
def import_upload():
    form = ImportUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        content = upload.read()
        pending = imports.stash_upload(db.session, current_user, upload.filename or "upload", content)
        db.session.commit()
        effective = form.effective_from.data.isoformat() if form.effective_from.data else ""
        return redirect(url_for("publisher.import_preview", token=pending.token, effective_from=effective))
    return render_template("publisher/import_upload.html", form=form, firm=_firm())


def _preview_key(token: str, effective: str) -> str:
    # The date is typed into the address: its digest keeps the key within the column's 64.
    return f"import.preview:{token}:{hashlib.sha256(effective.encode()).hexdigest()[:12]}"


def discard_upload(pending):
    """Drop an upload waiting for confirmation (this preview, or a big import's checked by a job)."""
    imports.finish_pending(pending, "discarded")
    db.session.commit()
    flash(_("The upload was discarded; nothing was imported."), "info")
    return redirect(url_for("publisher.import_upload"))


@bp.route("/import/<token>", methods=["GET", "POST"])
def import_preview(token: str):
    pending = imports.get_pending(db.session, token, current_user) or abort(404)
    form = ImportConfirmForm()
    effective = request.values.get("effective_from", "")
    if imports.estimate_rows(pending.filename, pending.content) > current_app.config["IMPORT_JOB_ROWS"]:
        # Too big to check within a request: the check, then the publish, run as jobs.
        # Keyed by upload and date: reloading this page finds the check under way, not a second one.
        job_id, _created = jobs.enqueue_now("import.preview", current_user.id,
                                            {"token": pending.token, "effective_from": effective,
                                             "lang": current_language()},
                                            active_key=_preview_key(pending.token, effective))
        return redirect(url_for("jobs.show", job_id=job_id))
    if form.validate_on_submit():
        if form.discard.data:
            return discard_upload(pending)
        preview = imports.preview_pending(db.session, pending, current_user, form.effective_from.data)
        if preview.fingerprint() != form.fingerprint.data:
            flash(_("Your schedule changed since this preview; check the new preview before publishing."), "error")
        elif not preview.ok:
            flash(_("The file has errors; nothing was imported."), "error")
        else:
            try:
                counts = imports.apply_preview(db.session, preview, current_user, form.reason.data or "")
                imports.finish_pending(pending, "applied")
            except ServiceError as exc:
                db.session.rollback()
                flash(str(exc), "error")
            else:
                db.session.commit()
                flash(_("Imported: %(new)s new, %(changed)s changed, %(unchanged)s unchanged.", **counts), "success")
                return redirect(url_for("publisher.schedule"))
        effective = form.effective_from.data
    preview = imports.preview_pending(db.session, pending, current_user, effective)
    form.token.data, form.fingerprint.data, form.effective_from.data = token, preview.fingerprint(), effective
    return render_template("publisher/import_preview.html", form=form, preview=preview, pending=pending,
                           firm=_firm())


@bp.get("/history")
def my_history():
    return redirect(url_for("public.firm_history", code=_firm().credit_code))
