"""Pages anyone can read: home, directory, firm schedules, history."""
from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from .. import codes
from ..extensions import db
from ..services import complaints, compliance, history, reads
from ..services.catalog import CatalogIndex
from ..services.registry import today
from .util import date_arg, page_arg

bp = Blueprint("public", __name__)


@bp.get("/")
def home():
    return render_template("public/home.html", figures=reads.registry_figures(db.session),
                           changes=reads.latest_changes(db.session))


@bp.get("/firms")
def directory():
    category = request.args.get("category", "")
    port = request.args.get("port", "")
    category = category if category in codes.CATEGORIES else ""
    port = port if port in codes.PORTS else ""
    q = (request.args.get("q") or "")[:100]
    page = reads.firm_directory(db.session, category, port, q, page=page_arg())
    counts = reads.item_counts_by_firm(db.session, [f.id for f in page.items])
    return render_template("public/directory.html", page=page, counts=counts, category=category,
                           port=port, q=q)


@bp.get("/firms/<code>")
def firm(code: str):
    firm = reads.firm_by_code(db.session, code) or abort(404)
    on = date_arg("on")
    as_of = on or today()
    schedule = reads.schedule_on(db.session, firm, as_of)
    upcoming = reads.pending_versions(db.session, firm.id, as_of) if on is None else []
    return render_template("public/firm.html", firm=firm, schedule=schedule, on=on, as_of=as_of,
                           upcoming=upcoming,
                           score=compliance.score(db.session, firm, schedule=schedule if on is None else None),
                           complaint_counts=complaints.public_counts(db.session, firm.id))


@bp.get("/firms/<code>/history")
def firm_history(code: str):
    firm = reads.firm_by_code(db.session, code) or abort(404)
    page = page_arg()
    versions = history.firm_history(db.session, firm.id, limit=100, offset=(page - 1) * 100)
    return render_template("public/firm_history.html", firm=firm, versions=versions, page=page,
                           has_next=len(versions) == 100)


@bp.get("/items/<int:item_id>")
def item_history(item_id: int):
    item = reads.published_item(db.session, item_id) or abort(404)
    versions = history.item_history(db.session, item.id)
    return render_template("public/item_history.html", item=item, firm=item.firm, versions=versions)


@bp.get("/catalog")
def catalog():
    index = CatalogIndex.load(db.session)
    return render_template("public/catalog.html", fee_types=list(index.types.values()))
