"""The open data API's regulator endpoints: flags and complaints, read with a regulator's
bearer token (api.regulator_token), never cached. On the api blueprint."""
from __future__ import annotations

from flask import abort

from ..extensions import db
from ..models import COMPLAINT_STATUSES, FLAG_STATUSES, Complaint, Flag
from ..services import open_data
from ..services.anomaly_rules import RULES
from ..services.oversight import SEVERITY_ORDER, FlagFilter
from . import api_json as js
from .api import bp, choice_arg, date_arg, firm_arg, listing, paging, regulator_token, respond, takes


@bp.get("/regulator/flags")
@regulator_token
@takes("status", "rule", "severity", "firm", "from", "to", "page", "per_page")
def flags():
    firm = firm_arg("firm")
    f = FlagFilter(status=choice_arg("status", FLAG_STATUSES, "flag status") or "",
                   rule=choice_arg("rule", RULES, "rule") or "",
                   severity=choice_arg("severity", SEVERITY_ORDER, "severity") or "",
                   firm_id=firm.id if firm else None, date_from=date_arg("from"), date_to=date_arg("to"))
    page, per_page = paging()
    found = open_data.flags(db.session, f, page, per_page)
    return respond(listing([js.flag(flag) for flag in found.items], found.total, page, per_page), private=True)


@bp.get("/regulator/flags/<int:flag_id>")
@regulator_token
@takes()
def flag(flag_id: int):
    flag = db.session.get(Flag, flag_id) or abort(404, description=f"No flag {flag_id}.")
    return respond(js.flag(flag), private=True)


@bp.get("/regulator/complaints")
@regulator_token
@takes("status", "firm", "page", "per_page")
def complaints():
    status = choice_arg("status", ("open",) + COMPLAINT_STATUSES, "complaint status") or ""
    firm = firm_arg("firm")
    page, per_page = paging()
    found = open_data.complaints_page(db.session, status, firm.id if firm else None, page, per_page)
    return respond(listing([js.complaint(c) for c in found.items], found.total, page, per_page), private=True)


@bp.get("/regulator/complaints/<int:complaint_id>")
@regulator_token
@takes()
def complaint(complaint_id: int):
    complaint = db.session.get(Complaint, complaint_id) or abort(404, description=f"No complaint {complaint_id}.")
    return respond(js.complaint(complaint), private=True)
