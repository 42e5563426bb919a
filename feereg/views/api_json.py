"""How the API writes the registry's rows as JSON: one function per schema of the OpenAPI
document (feereg/api_spec.py), named after it. Amounts are decimal strings with two places
(never floats); dates and times are ISO 8601, times in UTC."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import url_for

from .. import codes

CENT = Decimal("0.01")


def money(value: Decimal | None) -> str | None:
    return None if value is None else f"{Decimal(value).quantize(CENT)}"


def utc(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def firm_ref(firm) -> dict:
    """The few fields of a firm shown beside its fees (a Firm or a compare FirmRef)."""
    return {"credit_code": firm.credit_code, "name_zh": firm.name_zh, "name_en": firm.name_en,
            "category": firm.category, "status": firm.status}


def firm(firm, item_count: int | None = None) -> dict:
    code = firm.credit_code
    out = {**firm_ref(firm), "status_reason": firm.status_reason if firm.is_suspended else "",
           "ports": firm.port_codes, "chain_length": firm.chain_seq, "chain_head": firm.chain_head or None,
           "links": {"self": url_for("api.firm", code=code), "fee_items": url_for("api.fee_items", firm=code),
                     "versions": url_for("api.firm_versions", code=code),
                     "html": url_for("public.firm", code=code)}}
    if item_count is not None:
        out["item_count"] = item_count
    return out


def version(v, credit_code: str) -> dict:
    """One published change, with every field its hash covers: with the firm's credit code
    and the chain, anyone can recompute the hash (see feereg/services/history.py)."""
    return {
        "id": v.id, "item_id": v.item_id, "credit_code": credit_code, "seq": v.seq, "kind": v.kind,
        "fee_type": v.fee_type_code, "fee_code": v.fee_code, "name_zh": v.name_zh, "name_en": v.name_en,
        "unit": v.unit, "container_size": v.container_size, "cargo_scope": v.cargo_scope, "trade": v.trade,
        "direction": v.direction, "amount": money(v.amount), "currency": v.currency,
        "tax_included": v.tax_included, "tax_rate": money(v.tax_rate), "tiers": v.tiers,
        "pricing_basis": v.pricing_basis, "service_content": v.service_content, "legal_basis": v.legal_basis,
        "ports": codes.split_list(v.ports), "effective_from": v.effective_from.isoformat(),
        "published_at": v.published_at.isoformat(timespec="microseconds"), "reason": v.reason,
        "prev_hash": v.prev_hash, "hash": v.hash,
    }


def fee_item(v, firm) -> dict:
    """An item as it stands on a date: its version then, with its firm."""
    return {**version(v, firm.credit_code), "firm": firm_ref(firm),
            "links": {"self": url_for("api.fee_item", item_id=v.item_id),
                      "versions": url_for("api.fee_item_versions", item_id=v.item_id),
                      "html": url_for("public.item_history", item_id=v.item_id)}}


def compare_row(row) -> dict:
    v = row.version
    return {"item_id": v.item_id, "version_id": v.id, "firm": firm_ref(row.firm), "fee_code": v.fee_code,
            "name_zh": v.name_zh, "name_en": v.name_en, "unit": v.unit, "container_size": v.container_size,
            "cargo_scope": v.cargo_scope, "trade": v.trade, "direction": v.direction, "amount": money(v.amount),
            "currency": v.currency, "tax_included": v.tax_included, "tiers": v.tiers,
            "effective_from": v.effective_from.isoformat(), "amount_cny": money(row.amount_cny)}


def stats(s) -> dict | None:
    if s is None:
        return None
    return {"count": s.count, **{name: money(getattr(s, name)) for name in ("min", "q1", "median", "q3", "p90", "max")}}


def fee_type(ft) -> dict:
    return {"code": ft.code, "name_zh": ft.name_zh, "name_en": ft.name_en, "aliases": ft.alias_list,
            "group": ft.group, "unit": ft.unit, "pricing_basis": ft.pricing_basis, "pass_through": ft.pass_through,
            "charged_by": ft.charged_by_list,
            "abolished_from": ft.abolished_from.isoformat() if ft.abolished_from else None,
            "replaced_by": ft.replaced_by or None, "policy_note": ft.policy_note,
            "links": {"self": url_for("api.fee_type", code=ft.code), "compare": url_for("api.compare", code=ft.code)}}


def flag(f) -> dict:
    return {"id": f.id, "rule": f.rule, "severity": f.severity, "status": f.status, "firm": firm_ref(f.firm),
            "item_id": f.item_id, "version_id": f.version_id, "complaint_id": f.complaint_id,
            "fee_type": f.fee_type_code or None, "explanation": f.explanation, "evidence": f.evidence or {},
            "note": f.note, "reviewer": f.reviewer.email if f.reviewer_id and f.reviewer else None,
            "decided_at": utc(f.decided_at), "resolved_at": utc(f.resolved_at), "firm_answer": f.firm_answer,
            "firm_answered_at": utc(f.firm_answered_at), "created_at": utc(f.created_at),
            "updated_at": utc(f.updated_at),
            "links": {"self": url_for("api.flag", flag_id=f.id), "html": url_for("regulator.flag", flag_id=f.id)}}


def complaint(c) -> dict:
    return {"id": c.id, "status": c.status, "firm": firm_ref(c.firm), "item_id": c.item_id, "fee_name": c.fee_name,
            "fee_type": c.fee_type_code or None, "amount": money(c.amount), "currency": c.currency,
            "charged_on": c.charged_on.isoformat(), "description": c.description, "contact": c.contact,
            "firm_answer": c.firm_answer, "regulator_conclusion": c.regulator_conclusion,
            "received_at": utc(c.received_at), "forwarded_at": utc(c.forwarded_at),
            "answered_at": utc(c.answered_at), "closed_at": utc(c.closed_at),
            "links": {"self": url_for("api.complaint", complaint_id=c.id),
                      "html": url_for("regulator.complaint", complaint_id=c.id)}}
