"""Public pages of the audit loop: filing a complaint, and the invoice check. Routes on the
public blueprint; both rate-limited, since anyone can post them."""
from __future__ import annotations

from datetime import date

from flask import g, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import codes
from ..extensions import configured_limit, db, limiter
from ..forms.complaint import ComplaintForm, InvoiceForm
from ..i18n import current_language
from ..interchange.reader import FileRefused
from ..labels import audit_label
from ..services import complaints, invoice_check
from .public import bp
from .util import run_service


@bp.app_context_processor
def audit_labels():
    return {"audit_label": audit_label}


@bp.route("/complaints/new", methods=["GET", "POST"])
# Filed complaints are limited tightly; a shipper correcting typos is not locked out by
# them, but hammering the form at all is limited too.
@limiter.limit(configured_limit("COMPLAINT_RATE_LIMIT"), methods=["POST"],
               deduct_when=lambda response: g.get("complaint_filed"))
@limiter.limit(configured_limit("FORM_RATE_LIMIT"), methods=["POST"])
def complaint_new():
    form = ComplaintForm(current_language())
    if request.method == "GET":
        # Prefilled from a firm page or an invoice line: the one-step complaint.
        args = request.args
        form.firm.data = args.get("firm", "")[:200]
        form.fee_name.data = args.get("fee_name", "")[:200]
        form.amount.data = args.get("amount", "")[:20]
        if args.get("currency") in codes.CURRENCIES:
            form.currency.data = args["currency"]
        form.description.data = args.get("description", "")[:4000]
        form.item.data = args.get("item", "") if args.get("item", "").isdigit() else ""
        try:
            form.charged_on.data = date.fromisoformat(args["charged_on"]) if args.get("charged_on") else None
        except ValueError:
            form.charged_on.data = None
    elif form.validate_on_submit():
        actor = current_user if current_user.is_authenticated else None
        outcome = run_service(lambda: complaints.file_complaint(db.session, form.values, actor))
        if outcome.ok:
            g.complaint_filed = True
            complaint, _flag = outcome.value
            return render_template("public/complaint_filed.html", complaint=complaint)
    return render_template("public/complaint_form.html", form=form)


@bp.route("/invoice-check", methods=["GET", "POST"])
@limiter.limit(configured_limit("FORM_RATE_LIMIT"), methods=["POST"])
def invoice_check_page():
    form = InvoiceForm()
    results = None
    if form.validate_on_submit():
        try:
            text = form.lines.data or ""
            if form.file.data:
                text = invoice_check.read_upload(form.file.data.read(256 * 1024 + 1)[:256 * 1024])
            lines = invoice_check.parse(text)
        except FileRefused as exc:
            flash(str(exc), "error")
        else:
            if not lines:
                flash(_("Paste at least one invoice line, or upload a CSV file."), "error")
            else:
                results = invoice_check.check_invoice(db.session, lines)
        db.session.rollback()  # the check reads only
    return render_template("public/invoice_check.html", form=form, results=results)


@bp.app_template_global()
def complaint_link(result) -> str:
    """The complaint form prefilled with an invoice line."""
    return url_for("public.complaint_new", **result.complaint_args)
