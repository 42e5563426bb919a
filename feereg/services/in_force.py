"""Versions in force across many firms at once, for comparisons and quotes.

history.versions_in_force ranks every version of every item (or of one firm). A
comparison or a quote needs a thin slice of a large registry — one fee type, or
the fee types a shipment needs, at one port — so the candidate items are chosen
first, from any of their versions, and only their versions are ranked. Choosing
candidates from any version (not just the latest) keeps this correct when an item
changed fee type or scope over time: the outer query re-checks every condition on
the version actually in force.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import and_, exists, func, literal, or_, select

from ..models import FeeItemVersion, Firm, FirmPort


def port_condition(port: str):
    """A version applies at `port`: it names the port, or names none and its firm serves it."""
    names_port = (literal(";").concat(FeeItemVersion.ports).concat(";")).like(f"%;{port};%")
    firm_serves = exists().where(FirmPort.firm_id == FeeItemVersion.firm_id, FirmPort.port == port)
    return or_(names_port, and_(FeeItemVersion.ports == "", firm_serves))


def in_force_select(on: date, *conditions):
    """A select of (FeeItemVersion, Firm) for the versions in force on `on` (publishes
    only, withdrawn items drop out) that meet `conditions`, which are expressions on
    FeeItemVersion and Firm columns."""
    candidates = select(FeeItemVersion.item_id).join(Firm, Firm.id == FeeItemVersion.firm_id)
    candidates = candidates.where(FeeItemVersion.effective_from <= on, *conditions)
    ranked = (
        select(
            FeeItemVersion.id.label("vid"),
            func.row_number().over(
                partition_by=FeeItemVersion.item_id,
                order_by=(FeeItemVersion.effective_from.desc(), FeeItemVersion.seq.desc()),
            ).label("rank"),
        )
        .where(FeeItemVersion.effective_from <= on, FeeItemVersion.item_id.in_(candidates))
        .subquery()
    )
    return (
        select(FeeItemVersion, Firm)
        .join(ranked, and_(ranked.c.vid == FeeItemVersion.id, ranked.c.rank == 1))
        .join(Firm, Firm.id == FeeItemVersion.firm_id)
        .where(FeeItemVersion.kind == "publish", *conditions)
    )
