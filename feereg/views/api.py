"""The open data API, version 1: read-only JSON for now."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from .. import codes
from ..extensions import csrf, db
from ..services import reads
from ..services.registry import today
from .util import date_arg, page_arg

bp = Blueprint("api", __name__)
csrf.exempt(bp)


def _firm_json(firm) -> dict:
    return {"credit_code": firm.credit_code, "name_zh": firm.name_zh, "name_en": firm.name_en,
            "category": firm.category, "ports": firm.port_codes, "status": firm.status,
            "chain_head": firm.chain_head, "chain_length": firm.chain_seq}


def _version_json(v) -> dict:
    return {
        "item_id": v.item_id, "seq": v.seq, "kind": v.kind, "fee_type": v.fee_type_code, "fee_code": v.fee_code,
        "name_zh": v.name_zh, "name_en": v.name_en, "unit": v.unit, "container_size": v.container_size,
        "cargo_scope": v.cargo_scope, "trade": v.trade, "direction": v.direction, "amount": str(v.amount),
        "currency": v.currency, "tax_included": v.tax_included,
        "tax_rate": str(v.tax_rate) if v.tax_rate is not None else None, "tiers": v.tiers,
        "pricing_basis": v.pricing_basis, "service_content": v.service_content, "legal_basis": v.legal_basis,
        "ports": codes.split_list(v.ports), "effective_from": v.effective_from.isoformat(),
        "published_at": v.published_at.isoformat(), "prev_hash": v.prev_hash, "hash": v.hash,
    }


@bp.get("/firms")
def firms():
    category = request.args.get("category", "")
    port = request.args.get("port", "")
    page = reads.firm_directory(db.session, category if category in codes.CATEGORIES else "",
                                port if port in codes.PORTS else "", page=page_arg(), per_page=100)
    return jsonify(items=[_firm_json(f) for f in page.items], page=page.page, pages=page.pages, total=page.total)


@bp.get("/firms/<code>")
def firm(code: str):
    firm = reads.firm_by_code(db.session, code)
    if firm is None:
        return jsonify(error="no firm with this credit code"), 404
    on = date_arg("as_of") or today()
    schedule = reads.schedule_on(db.session, firm, on)
    return jsonify(firm=_firm_json(firm), as_of=on.isoformat(), items=[_version_json(v) for v in schedule])


@bp.errorhandler(400)
def bad_request(error):
    return jsonify(error=getattr(error, "description", "bad request")), 400


@bp.errorhandler(404)
def not_found(error):
    return jsonify(error="not found"), 404


