"""Downloads of the public pages, added to the public blueprint: a firm's schedule, a
comparison and a shipment quote as PDF; schedule, comparison and search results as CSV
and XLSX. Each takes the same arguments as its page, so a download is what the page shows
(all rows, not one page of them)."""
from __future__ import annotations

from flask import abort, render_template, request

from ..exports import pdf, tables
from ..extensions import db
from ..forms.search import SearchForm
from ..forms.shipper import CompareForm, ShipmentForm
from ..i18n import current_language
from ..services import compare as compare_service
from ..services import quote as quote_service
from ..services import reads
from ..services import search as search_service
from ..services.catalog import CatalogIndex
from ..services.quote_rules import SERVICES
from ..services.registry import today
from .files import pdf_response, table_response
from .public import bp
from .public_compare import compare_limit, quote_limit
from .public_search import search_limit
from .util import date_arg

#: Search results in one download: enough for any real question, bounded for the server.
SEARCH_EXPORT_MAX = 5000
#: Firms per category in a quote PDF, and of those, itemised (as on the page).
QUOTE_FIRMS = 50
QUOTE_ITEMISED = 10


@bp.get("/firms/<code>/schedule.<any(pdf, csv, xlsx):fmt>")
def firm_schedule_file(code: str, fmt: str):
    firm = reads.firm_by_code(db.session, code) or abort(404)
    on = date_arg("on")
    as_of = on or today()
    name = f"feereg-schedule-{firm.credit_code}-{as_of.isoformat()}"
    if fmt == "pdf":
        body = pdf.schedule_pdf(firm, as_of, current_language(),
                                lambda: reads.schedule_on(db.session, firm, as_of))
        return pdf_response(body, name)
    versions = reads.schedule_on(db.session, firm, as_of)
    return table_response(fmt, name, tables.SCHEDULE_HEADER, tables.schedule_rows(firm, versions))


@bp.get("/compare/<code>/download.<any(pdf, csv, xlsx):fmt>")
@compare_limit
def compare_file(code: str, fmt: str):
    lang = current_language()
    fee_type = compare_service.find_fee_type(db.session, code) or abort(404)
    form = CompareForm(lang, formdata=request.args)
    if not form.validate():
        abort(400)
    comparison = compare_service.compare_fee_type(db.session, fee_type, lang=lang, **form.filters())
    name = f"feereg-compare-{fee_type.code}-{comparison.on.isoformat()}"
    if fmt != "pdf":
        return table_response(fmt, name, tables.COMPARISON_HEADER, tables.comparison_rows(comparison))
    chosen = [f"{field.label.text}: {_chosen_label(field)}"
              for field in (form.unit, form.size, form.cargo_scope, form.port, form.category) if field.data]
    heads = reads.chain_heads(db.session, {row.firm.id for row in comparison.rows})
    return pdf_response(pdf.render_pdf("print/compare.html", fee_type=fee_type, comparison=comparison,
                                       filters=chosen, heads=heads), name)


def _chosen_label(field) -> str:
    """A select field's chosen option as the reader saw it, for the PDF's filter line."""
    return next((str(option.label.text) for option in field if option.checked), str(field.data))


@bp.get("/quote/results.<any(pdf):fmt>")
@quote_limit
def quote_file(fmt: str):
    lang = current_language()
    form = ShipmentForm(lang, formdata=request.args)
    if not form.validate():
        return render_template("public/quote_form.html", form=form), 400
    result = quote_service.quote_shipment(db.session, form.shipment(), on=form.on.data, lang=lang,
                                          itemised=QUOTE_ITEMISED)
    heads = reads.chain_heads(db.session, {q.firm.id for q in result.quotes})
    return pdf_response(pdf.render_pdf("print/quote.html", result=result, services=SERVICES, heads=heads,
                                       max_firms=QUOTE_FIRMS, max_itemised=QUOTE_ITEMISED),
                        f"feereg-quote-{result.shipment.port}-{result.on.isoformat()}")


@bp.get("/search/download.<any(csv, xlsx):fmt>")
@search_limit
def search_file(fmt: str):
    form = SearchForm(request.args)
    catalog = CatalogIndex.load(db.session)
    filters = search_service.clean_filters(request.args, set(catalog.types))
    result = search_service.search_fees(db.session, form.q.data, filters, form.sort.data or "relevance",
                                        1, SEARCH_EXPORT_MAX)
    if result.error:
        abort(400, description=result.error)
    return table_response(fmt, f"feereg-search-{today().isoformat()}", tables.SEARCH_HEADER,
                          tables.search_rows(result.results))
