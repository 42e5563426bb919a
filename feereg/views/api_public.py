"""The open data API's public endpoints: firms, fee items in force, one item and its
versions, a firm's versions, search, compare, and the fee catalog. On the api blueprint."""
from __future__ import annotations

from flask import abort, url_for
from flask_babel import force_locale

from .. import codes
from ..api_spec import openapi_document
from ..extensions import db
from ..search import FACETS, SORTS as SEARCH_SORTS
from ..services import compare as compare_service
from ..services import open_data, reads
from ..services.registry import today
from . import api_json as js
from .api import (BadParameter, bp, choice_arg, date_arg, firm_arg, listing, paging, problem, respond,
                  scope_arg, takes, text_arg)

#: Deep pages of a broad search cost more than anyone reads (the search page stops at 500
#: pages of 20): narrow with filters instead.
SEARCH_MAX_RESULTS = 10_000


@bp.get("/")
@takes()
def index():
    document = openapi_document()
    return respond({"name": document["info"]["title"], "version": document["info"]["version"],
                    "openapi": "/api/v1/openapi.json", "documentation": "/api",
                    "endpoints": {f"{method.upper()} {path}": operation["summary"]
                                  for path, methods in document["paths"].items()
                                  for method, operation in methods.items()}})


@bp.get("/openapi.json")
@takes()
def openapi():
    return respond(openapi_document())


@bp.get("/firms")
@takes("category", "port", "status", "q", "page", "per_page")
def firms():
    category = choice_arg("category", codes.CATEGORIES, "firm category")
    port = choice_arg("port", codes.PORTS)
    status = choice_arg("status", codes.FIRM_STATUSES, "firm status")
    q = text_arg("q")
    page, per_page = paging()
    found = reads.firm_directory(db.session, category or "", port or "", q or "", status or "", page=page,
                                 per_page=per_page)
    counts = reads.item_counts_by_firm(db.session, [f.id for f in found.items])
    return respond(listing([js.firm(f, counts.get(f.id, 0)) for f in found.items], found.total, page, per_page),
                   last_modified=open_data.changed_at(db.session))


@bp.get("/firms/<code>")
@takes()
def firm(code: str):
    firm = reads.firm_by_code(db.session, code) or abort(404, description=f"No firm has the credit code '{code}'.")
    count = reads.item_counts_by_firm(db.session, [firm.id]).get(firm.id, 0)
    return respond(js.firm(firm, count), last_modified=open_data.changed_at(db.session, firm_id=firm.id))


@bp.get("/firms/<code>/versions")
@takes("as_of", "page", "per_page")
def firm_versions(code: str):
    firm = reads.firm_by_code(db.session, code) or abort(404, description=f"No firm has the credit code '{code}'.")
    on = date_arg("as_of")
    page, per_page = paging()
    found = open_data.firm_versions(db.session, firm, on, page, per_page)
    return respond(listing([js.version(v, firm.credit_code) for v in found.items], found.total, page, per_page,
                           firm=js.firm_ref(firm), as_of=on.isoformat() if on else None,
                           chain_length=firm.chain_seq, chain_head=firm.chain_head or None),
                   last_modified=open_data.changed_at(db.session, firm_id=firm.id))


@bp.get("/fee-items")
@takes("firm", "fee_type", "port", "category", "currency", "unit", "pricing_basis", "container_size",
       "cargo_scope", "trade", "direction", "as_of", "page", "per_page")
def fee_items():
    firm = firm_arg("firm")
    f = open_data.ItemFilter(
        firm_id=firm.id if firm else None,
        fee_type=_fee_type_arg("fee_type"),
        port=choice_arg("port", codes.PORTS),
        category=choice_arg("category", codes.CATEGORIES, "firm category"),
        currency=choice_arg("currency", codes.CURRENCIES),
        unit=choice_arg("unit", codes.UNITS),
        pricing_basis=choice_arg("pricing_basis", codes.PRICING_BASES, "pricing basis"),
        container_size=scope_arg("container_size", codes.CONTAINER_SIZES, "container size"),
        cargo_scope=scope_arg("cargo_scope", codes.CARGO_SCOPES, "cargo scope"),
        trade=scope_arg("trade", codes.TRADES),
        direction=scope_arg("direction", codes.DIRECTIONS),
    )
    on = date_arg("as_of")
    page, per_page = paging()
    found = open_data.fee_items_in_force(db.session, on or today(), f, page, per_page)
    return respond(listing([js.fee_item(v, owner) for v, owner in found.items], found.total, page, per_page,
                           as_of=(on or today()).isoformat()),
                   last_modified=open_data.changed_at(db.session, firm_id=firm.id if firm else None,
                                                      today_dependent=on is None))


@bp.get("/fee-items/<int:item_id>")
@takes("as_of")
def fee_item(item_id: int):
    item = _item_or_404(item_id)
    on = date_arg("as_of")
    current = open_data.version_in_force(db.session, item, on or today())
    code = item.firm.credit_code
    versions = list(reversed(item.versions))  # newest first, as in the version listings
    return respond({"id": item.id, "status": item.status, "firm": js.firm_ref(item.firm),
                    "as_of": (on or today()).isoformat(),
                    "in_force": js.version(current, code) if current is not None and current.kind == "publish"
                    else None,
                    "versions": [js.version(v, code) for v in versions],
                    "links": {"self": url_for("api.fee_item", item_id=item.id),
                              "versions": url_for("api.fee_item_versions", item_id=item.id),
                              "firm": url_for("api.firm", code=code),
                              "html": url_for("public.item_history", item_id=item.id)}},
                   last_modified=open_data.changed_at(db.session, firm_id=item.firm_id, item_id=item.id,
                                                      today_dependent=on is None))


@bp.get("/fee-items/<int:item_id>/versions")
@takes("as_of", "page", "per_page")
def fee_item_versions(item_id: int):
    item = _item_or_404(item_id)
    on = date_arg("as_of")
    page, per_page = paging()
    found = open_data.item_versions(db.session, item, on, page, per_page)
    code = item.firm.credit_code
    return respond(listing([js.version(v, code) for v in found.items], found.total, page, per_page,
                           item_id=item.id, as_of=on.isoformat() if on else None),
                   last_modified=open_data.changed_at(db.session, firm_id=item.firm_id, item_id=item.id))


@bp.get("/search")
@takes("q", *FACETS, "sort", "page", "per_page")
def search():
    q = text_arg("q", 1000)
    if not q:
        raise BadParameter("q", "is required: the fee, firm or port to look for, e.g. THC or 堆场.")
    filters = {"fee_type": _fee_type_arg("fee_type"), "category": choice_arg("category", codes.CATEGORIES,
                                                                              "firm category"),
               "port": choice_arg("port", codes.PORTS), "currency": choice_arg("currency", codes.CURRENCIES),
               "pricing_basis": choice_arg("pricing_basis", codes.PRICING_BASES, "pricing basis")}
    filters = {k: v for k, v in filters.items() if v}
    sort = choice_arg("sort", SEARCH_SORTS, "sort") or "relevance"
    page, per_page = paging()
    if page * per_page > SEARCH_MAX_RESULTS:
        raise BadParameter("page", f"a search lists its first {SEARCH_MAX_RESULTS} results; narrow it with filters.")
    with force_locale("en"):  # the service's messages, in the API's language
        try:
            found = open_data.search(db.session, q, filters, sort, page, per_page)
        except open_data.SearchRefused as refused:
            raise BadParameter("q", str(refused)) from None
        if found.error:
            return problem(503, str(found.error), {"Retry-After": "60"})
        notices = [str(n) for n in found.notices]
    return respond(listing([js.fee_item(r.version, r.version.firm) for r in found.results], found.total, page,
                           per_page, query=q, filters=filters, sort=sort, notices=notices,
                           facets={facet: [{"value": value, "count": count} for value, count in found.facets.get(facet, [])]
                                   for facet in FACETS}))


@bp.get("/compare/<code>")
@takes("unit", "container_size", "cargo_scope", "port", "category", "as_of", "sort", "order", "page", "per_page")
def compare(code: str):
    fee_type = compare_service.find_fee_type(db.session, code) or abort(
        404, description=f"No fee type has the code '{code}'; the catalog is at /api/v1/fee-types.")
    scope = scope_arg("cargo_scope", codes.CARGO_SCOPES, "cargo scope")
    on = date_arg("as_of")
    sort = choice_arg("sort", compare_service.SORTS, "sort") or "amount"
    order = choice_arg("order", ("asc", "desc"), "order") or "asc"
    page, per_page = paging()
    comparison = compare_service.compare_fee_type(
        db.session, fee_type, unit=choice_arg("unit", codes.UNITS),
        size=choice_arg("container_size", codes.CONTAINER_SIZES, "container size"),
        port=choice_arg("port", codes.PORTS), category=choice_arg("category", codes.CATEGORIES, "firm category"),
        on=on, cargo_scope=scope, sort=sort, descending=order == "desc", lang="en", page=page, per_page=per_page)
    table = comparison.rates
    return respond(listing(
        [js.compare_row(r) for r in comparison.rows], comparison.total, page, per_page,
        fee_type={"code": fee_type.code, "name_zh": fee_type.name_zh, "name_en": fee_type.name_en},
        as_of=comparison.on.isoformat(), sort=sort, order=order, stats=js.stats(comparison.stats),
        firm_count=comparison.firm_count, mixed=comparison.mixed,
        mix=[{"unit": unit, "container_size": size, "count": n}
             for (unit, size), n in sorted(comparison.mix.items())],
        rates={"effective_from": table.effective_from.isoformat() if table.effective_from else None,
               "cny_per_unit": {c: str(r) for c, r in sorted(table.rates.items())}}))


@bp.get("/fee-types")
@takes("group", "page", "per_page")
def fee_types():
    group = choice_arg("group", open_data.fee_type_groups(db.session), "fee type group")
    page, per_page = paging()
    found = open_data.fee_types(db.session, group, page, per_page)
    return respond(listing([js.fee_type(ft) for ft in found.items], found.total, page, per_page))


@bp.get("/fee-types/<code>")
@takes()
def fee_type(code: str):
    ft = open_data.fee_type(db.session, code) or abort(
        404, description=f"No fee type has the code '{code}'; the catalog is at /api/v1/fee-types.")
    return respond(js.fee_type(ft))


def _item_or_404(item_id: int):
    return open_data.public_item(db.session, item_id) or abort(404, description=f"No published fee item {item_id}.")


def _fee_type_arg(name: str) -> str | None:
    code = text_arg(name, 32)
    if not code:
        return None
    if open_data.fee_type(db.session, code) is None:
        raise BadParameter(name, f"'{code}' is not a fee type of the catalog; see /api/v1/fee-types.")
    return code.upper()
