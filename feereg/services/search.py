"""Searching published fees: the one entry point the search page uses.

The backend returns ranked ids and facet counts; the rows are loaded here from the
database, in ranking order, so the page always shows the registry's own values.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from .. import codes
from ..models import FeeItemVersion, Firm
from ..search import FACETS, SORTS, SearchUnavailable, get_backend
from ..search.highlight import highlight
from ..search.query import ParsedQuery, QueryError, parse
from .reads import Paged

log = logging.getLogger(__name__)

_FACET_TABLES = {"category": codes.CATEGORIES, "port": codes.PORTS, "currency": codes.CURRENCIES,
                 "pricing_basis": codes.PRICING_BASES}


@dataclass
class Result:
    """A version found, with its names highlighted where the query matched them, when shown
    (a page shows three of the four; the API and downloads none)."""

    version: FeeItemVersion
    parsed: ParsedQuery = field(repr=False, compare=False)

    @cached_property
    def name_zh(self) -> Markup:
        return highlight(self.version.name_zh, self.parsed)

    @cached_property
    def name_en(self) -> Markup:
        return highlight(self.version.name_en, self.parsed)

    @cached_property
    def firm_zh(self) -> Markup:
        return highlight(self.version.firm.name_zh, self.parsed)

    @cached_property
    def firm_en(self) -> Markup:
        return highlight(self.version.firm.name_en, self.parsed)


@dataclass
class SearchPage(Paged):
    query: str
    results: list[Result] = field(default_factory=list)
    total: int = 0
    page: int = 1
    per_page: int = 20
    facets: dict = field(default_factory=dict)
    filters: dict = field(default_factory=dict)
    sort: str = "relevance"
    #: A message instead of results: the query cannot be searched, or the index is unavailable.
    error: str | None = None
    #: The error is the index's, not the query's: the page answers 503 (try again later).
    unavailable: bool = False
    notices: list = field(default_factory=list)
    #: What the index found, in ranking order; `results` holds their rows once loaded.
    hits: list = field(default_factory=list, repr=False)
    parsed: ParsedQuery | None = field(default=None, repr=False, compare=False)

    @property
    def basis(self) -> tuple:
        """What the index answered, as a value: two answers alike show the same versions,
        which never change once written (their firms may: `shown_firms`)."""
        return (tuple(self.hits), self.total,
                tuple((facet, tuple(values)) for facet, values in self.facets.items()))


def clean_filters(raw: dict, fee_type_codes: set[str]) -> dict[str, str]:
    """Keep only known facet values: a filter is a closed vocabulary, never free text."""
    out = {}
    for facet in FACETS:
        value = (raw.get(facet) or "").strip()
        known = fee_type_codes if facet == "fee_type" else _FACET_TABLES[facet]
        if value and value in known:
            out[facet] = value
    return out


def search_fees(session: Session, raw_query: str | None, filters: dict[str, str], sort: str = "relevance",
                page: int = 1, per_page: int = 20) -> SearchPage:
    return load_results(session, find_fees(raw_query, filters, sort, page, per_page))


def find_fees(raw_query: str | None, filters: dict[str, str], sort: str = "relevance",
              page: int = 1, per_page: int = 20) -> SearchPage:
    """What the index finds: the page's hits, total and facets, no rows read yet."""
    sort = sort if sort in SORTS else "relevance"
    result = SearchPage(query=raw_query or "", page=page, per_page=per_page, filters=filters, sort=sort)
    try:
        result.parsed = parse(raw_query)
    except QueryError as exc:
        result.error = str(exc)
        return result
    result.notices = list(result.parsed.notices)
    try:
        found = get_backend().search(result.parsed, filters, sort, page, per_page)
    except SearchUnavailable:
        log.exception("search index unavailable")
        result.unavailable = True
        result.error = str(_l("Search is not available right now: its index is being rebuilt. "
                              "Try again in a few minutes, or browse the firm directory."))
        return result
    result.hits, result.total, result.facets = found.hits, found.total, found.facets
    return result


def shown_firms(session: Session, result: SearchPage) -> tuple:
    """What the page shows of the found versions' firms, as a value. The snapshot's lineage
    sees a firm's audited changes; this sees one made without the application too."""
    if not result.hits:
        return ()
    return tuple(tuple(row) for row in session.execute(
        select(Firm.id, Firm.credit_code, Firm.name_zh, Firm.name_en, Firm.status)
        .join(FeeItemVersion, FeeItemVersion.firm_id == Firm.id)
        .where(FeeItemVersion.id.in_([hit.version_id for hit in result.hits]))
        .distinct().order_by(Firm.id)))


def load_results(session: Session, result: SearchPage) -> SearchPage:
    """The found versions' rows, in the index's ranking order."""
    if result.hits:
        result.results = _load(session, [hit.version_id for hit in result.hits], result.parsed)
    return result


def _load(session: Session, version_ids: list[int], parsed: ParsedQuery) -> list[Result]:
    if not version_ids:
        return []
    rows = {v.id: v for v in session.scalars(
        select(FeeItemVersion).options(joinedload(FeeItemVersion.firm))
        .where(FeeItemVersion.id.in_(version_ids)))}
    out = []
    for vid in version_ids:  # the backend's ranking order
        v = rows.get(vid)
        if v is None:  # the index is ahead of or behind this transaction: skip, never fail
            continue
        out.append(Result(v, parsed))
    return out
