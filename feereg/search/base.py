"""The search interface the rest of the application sees.

Views and services call `get_backend()` and the `SearchBackend` methods; nothing
outside `feereg/search/` imports Whoosh. A second backend (an external engine, the
FTS5 baseline of the benchmark) implements the same few methods.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

#: The facets of a search, in display order: filter name → column of the item projection.
FACETS = ("category", "port", "fee_type", "currency", "pricing_basis")
SORTS = ("relevance", "amount", "amount_desc")


class SearchUnavailable(Exception):
    """The index is missing or damaged; the page says so and `feereg reindex` repairs it."""


@dataclass(frozen=True)
class Hit:
    item_id: int
    #: The version in force today, the one whose values the result shows.
    version_id: int
    score: float


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    #: facet → [(value, count)], largest first.
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class SearchBackend(Protocol):
    name: str

    def index_items(self, item_ids: list[int]) -> None:
        """Bring these items (published, changed, withdrawn) up to date from the database."""

    def remove(self, item_ids: list[int]) -> None:
        """Drop these items from the results."""

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Rebuild everything from the database; returns the number of items indexed."""

    def search(self, query, filters: dict[str, str], sort: str, page: int, per_page: int) -> SearchResult:
        """`query` is a feereg.search.query.ParsedQuery; raises SearchUnavailable."""

    def live_item_ids(self) -> set[int]:
        """Every item the index would find today (for checks against the database)."""

    # A backend whose index lives in the registry's database (pg_backend.PgBackend) also has
    # `transactional = True` and `index_in_transaction(conn, item_ids)`: search/hooks.py then
    # indexes a publish on the publishing session's connection, before its commit, instead
    # of calling index_items after it.


class NullBackend:
    """Finds nothing and keeps nothing: for a deployment without search, and tests of other areas."""

    name = "null"

    def index_items(self, item_ids):
        pass

    def remove(self, item_ids):
        pass

    def rebuild(self, progress=None):
        return 0

    def search(self, query, filters, sort, page, per_page):
        return SearchResult([], 0, {})

    def live_item_ids(self):
        return set()
