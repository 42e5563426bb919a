"""The regulator's downloads, on the regulator blueprint (its role check applies): the audit
report as PDF and XLSX (its CSV is in regulator.py), and the flags list as CSV and XLSX."""
from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from ..exports import pdf
from ..extensions import db
from ..forms.oversight import ReportForm
from ..i18n import current_language
from ..services import audit_report, jobs, oversight
from ..services.job_kinds import report_params
from ..services.anomaly_rules import RULES
from ..services.registry import today
from .files import pdf_response, table_response
from .regulator import _report_filter, bp

@bp.get("/report.<any(pdf, xlsx):fmt>")
def report_file(fmt: str):
    form = ReportForm(list(RULES), current_language(), request.args)
    form.validate()
    f, firm = _report_filter(form)
    if form.firm.errors:  # as report.csv: a mistyped firm is refused, never the whole registry
        abort(400, description=form.firm.errors[0])
    name = f"feereg-audit-{today().isoformat()}"
    if fmt == "xlsx":
        return table_response(fmt, name, audit_report.CSV_HEADER, audit_report.csv_rows(db.session, f))
    summary = audit_report.summary(db.session, f)
    in_request = current_app.config["REPORT_PDF_JOB_ROWS"]
    if summary.total > in_request:  # too long to lay out within a request: offer a job
        return render_template("jobs/report_pdf.html", pdf_job=summary.total, args=request.args.to_dict())
    flags = list(db.session.scalars(audit_report.report_query(f).limit(in_request)))
    return pdf_response(pdf.render_pdf("print/report.html", f=f, firm=firm, flags=flags, truncated=False,
                                       as_of=today(), summary=summary), name)


@bp.post("/report.pdf")
def report_pdf_job():
    """Start the PDF of a long report as a job (CSRF-checked like every POST)."""
    form = ReportForm(list(RULES), current_language(), request.args)
    form.validate()
    f, _firm = _report_filter(form)
    if form.firm.errors:
        abort(400, description=form.firm.errors[0])
    job = jobs.enqueue(db.session, "report.pdf", current_user, report_params(f, current_language()))
    db.session.commit()
    return redirect(url_for("jobs.show", job_id=job.id))


@bp.get("/flags.<any(csv, xlsx):fmt>")
def flags_file(fmt: str):
    # The flags page's own filter (status open by default), all rows rather than one page.
    f = oversight.FlagFilter.from_args(request.args)
    return table_response(fmt, f"feereg-flags-{today().isoformat()}", audit_report.CSV_HEADER,
                          audit_report.csv_rows(db.session, f))
