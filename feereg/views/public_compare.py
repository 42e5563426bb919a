"""Shippers' tools on the public blueprint: compare one fee type across firms, quote a shipment."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import abort, redirect, render_template, request, url_for
from markupsafe import Markup

from .. import charts, http_cache
from ..extensions import configured_limit, db, limiter
from ..forms.shipper import CompareForm, PickFeeTypeForm, ShipmentForm
from ..i18n import current_language
from ..services import compare as compare_service
from ..services import quote as quote_service
from ..services import reads
from ..services import result_cache
from ..services.quote_rules import SERVICES, categories_for
from ..services.registry import today
from .public import bp
from .util import page_arg, result_key

#: Rows of a comparison page (the CSV, JSON and PDF downloads hold every row).
ROWS_PER_PAGE = 50
#: Firms listed per category on a quote page (the rest are counted), and of those, itemised:
#: the cheapest few are what a shipper reads first (the PDF lists more). One category at a
#: time can be opened further ("more"), as a page of its own rather than a page of everything.
QUOTE_FIRMS_SHOWN = 20
QUOTE_FIRMS_ITEMISED = 5
QUOTE_FIRMS_MORE = 100
#: Comparisons and quotes (pages and downloads) one client address may ask for, each together.
compare_limit = limiter.shared_limit(configured_limit("COMPARE_RATE_LIMIT"), scope="compare")
quote_limit = limiter.shared_limit(configured_limit("QUOTE_RATE_LIMIT"), scope="quote")


@bp.get("/compare")
def compare_index():
    lang = current_language()
    fee_types = compare_service.comparable_fee_types(db.session)
    form = PickFeeTypeForm([ft for ft, _count in fee_types], lang, formdata=request.args or None)
    if "fee_type" in request.args and form.validate():
        args = {k: v for k, v in request.args.items() if k != "fee_type" and v}
        return redirect(url_for("public.compare", code=form.fee_type.data, **args))
    return render_template("public/compare_index.html", form=form, fee_types=fee_types)


def _sort_urls(code: str, sort: str, descending: bool) -> dict[str, str]:
    """Header links: a column sorts ascending first, and flips when it is already the sort."""
    urls = {}
    args = {k: v for k, v in request.args.items() if k not in ("sort", "dir", "page")}
    for column in compare_service.SORTS:
        flip = "asc" if column == sort and descending else ("desc" if column == sort else "asc")
        urls[column] = url_for("public.compare", code=code, sort=column, dir=flip, **args)
    return urls


@bp.get("/compare/<code>")
@compare_limit
def compare(code: str):
    lang = current_language()
    fee_type = compare_service.find_fee_type(db.session, code) or abort(404)
    form = CompareForm(lang, formdata=request.args)
    marked = request.args.get("item", type=int)
    if form.validate():
        # The names in the key: read before the cache's snapshot, a name changed in between
        # must not be kept under that snapshot.
        key = result_key(lang) + (fee_type.name_zh, fee_type.name_en)
        content = result_cache.kept(db.session, key, {fee_type.code},
                                    lambda snap: _comparison_content(fee_type, form, lang, marked, snap),
                                    state=http_cache.state_seen())
    else:  # the form's errors, no table
        content = render_template("public/_compare_content.html", form=form, fee_type=fee_type, comparison=None,
                                  marked=marked)
    return render_template("public/compare.html", fee_type=fee_type, content=Markup(content))


def _comparison_content(fee_type, form: CompareForm, lang: str, marked: int | None, snap) -> str:
    """The filters with the comparison's table and chart, rendered."""
    sort = request.args.get("sort") if request.args.get("sort") in compare_service.SORTS else "amount"
    descending = request.args.get("dir") == "desc"
    page = page_arg()
    comparison = compare_service.compare_fee_type(
        db.session, fee_type, sort=sort, descending=descending, lang=lang, page=page, per_page=ROWS_PER_PAGE,
        chart_dots=charts.MAX_DOTS, marked_item=marked, snap=snap, **form.filters())
    points = [(point.amount_cny, f"{point.firm_name(lang)}: {point.amount_cny:,.2f} CNY", point.item_id == marked)
              for point in comparison.chart_rows]
    chart = charts.strip_chart(points, comparison.stats, sampled=comparison.chart_sampled)
    return render_template("public/_compare_content.html", form=form, fee_type=fee_type, comparison=comparison,
                           rows=reads.Page(comparison.rows, comparison.total, page, ROWS_PER_PAGE),
                           chart=chart, sort=sort, descending=descending,
                           sort_urls=_sort_urls(fee_type.code, sort, descending), marked=marked, today=today())


@bp.get("/quote")
def quote_form():
    # Arguments pre-fill the form ("change the shipment" from a result) without validating it.
    form = ShipmentForm(current_language(), formdata=request.args if "port" in request.args else None)
    return render_template("public/quote_form.html", form=form)


@bp.get("/quote/results")
@quote_limit
def quote_results():
    lang = current_language()
    form = ShipmentForm(lang, formdata=request.args)
    if not form.validate():
        return render_template("public/quote_form.html", form=form)
    more = request.args.get("more", "")
    shipment = form.shipment()
    if more not in categories_for(shipment):
        more = ""
    per_category = QUOTE_FIRMS_MORE if more else QUOTE_FIRMS_SHOWN
    results = result_cache.kept(
        db.session, result_key(lang), quote_service.fee_types_read(shipment),
        lambda snap: _quote_results(form, shipment, lang, more, per_category, snap),
        basis=lambda snap: quote_service.quote_basis(snap, shipment, form.on.data, per_category=per_category),
        state=http_cache.state_seen())
    return render_template("public/quote_results.html", results=Markup(results))


def _quote_results(form: ShipmentForm, shipment, lang: str, more: str, per_category: int, snap) -> str:
    """The quotes, rendered."""
    result = quote_service.quote_shipment(db.session, shipment, on=form.on.data, lang=lang, per_category=per_category,
                                          itemised=QUOTE_FIRMS_ITEMISED, snap=snap)
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "more"]
    return render_template("public/_quote_results.html", form=form, result=result,
                           edit_url=url_for("public.quote_form") + "?" + urlencode(args),
                           more=more, more_url=url_for("public.quote_results") + "?" + urlencode(args + [("more", "")]),
                           less_url=url_for("public.quote_results") + "?" + urlencode(args),
                           services=SERVICES, shown=QUOTE_FIRMS_SHOWN, shown_more=QUOTE_FIRMS_MORE,
                           max_itemised=QUOTE_FIRMS_ITEMISED)
