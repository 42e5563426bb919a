"""The regulator's downloads, on the regulator blueprint (its role check applies): the audit
report as PDF and XLSX (its CSV is in regulator.py), and the flags list as CSV and XLSX."""
from __future__ import annotations

from flask import abort, request

from ..exports import pdf
from ..extensions import db
from ..forms.oversight import ReportForm
from ..i18n import current_language
from ..services import audit_report, oversight
from ..services.anomaly_rules import RULES
from ..services.registry import today
from .files import pdf_response, table_response
from .regulator import _report_filter, bp

#: Flags listed in a report PDF; beyond this the CSV is the tool (the PDF says so).
REPORT_PDF_MAX = 2000


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
    flags = list(db.session.scalars(audit_report.report_query(f).limit(REPORT_PDF_MAX + 1)))
    return pdf_response(pdf.render_pdf("print/report.html", f=f, firm=firm, flags=flags[:REPORT_PDF_MAX],
                                       truncated=len(flags) > REPORT_PDF_MAX, as_of=today(),
                                       summary=audit_report.summary(db.session, f)), name)


@bp.get("/flags.<any(csv, xlsx):fmt>")
def flags_file(fmt: str):
    # The flags page's own filter (status open by default), all rows rather than one page.
    f = oversight.FlagFilter.from_args(request.args)
    return table_response(fmt, f"feereg-flags-{today().isoformat()}", audit_report.CSV_HEADER,
                          audit_report.csv_rows(db.session, f))
