"""The public search page, added to the public blueprint."""
from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from flask import render_template, request, url_for
from markupsafe import Markup

from .. import http_cache
from ..extensions import configured_limit, db, limiter
from ..forms.search import SearchForm
from ..i18n import current_language
from ..search import FACETS
from ..services import result_cache
from ..services import search as search_service
from ..services.catalog import fee_type_names
from .public import bp
from .util import page_arg, result_key

PER_PAGE = 20
#: Deep pages of a broad search cost more than anyone reads; narrow with facets instead.
MAX_PAGE = 500


#: Searches (the page and its downloads) one client address may run, together.
search_limit = limiter.shared_limit(configured_limit("SEARCH_RATE_LIMIT"), scope="search")


@bp.get("/search")
@search_limit
def search():
    form = SearchForm(request.args)
    fee_types = fee_type_names(db.session, http_cache.state_seen())
    filters = search_service.clean_filters(request.args, set(fee_types))
    page = min(page_arg(), MAX_PAGE)
    found = None
    if "q" in request.args:  # an empty box submitted gets the message saying what to type
        found = search_service.find_fees(form.q.data, filters, form.sort.data or "relevance", page, PER_PAGE)

    def content(_snapshot=None) -> str:
        result = found and search_service.load_results(db.session, found)
        return render_template("public/_search_content.html", form=form, result=result, fee_types=fee_types,
                               facets=FACETS, search_url=_search_url)

    if found is None or found.error:  # nothing read off the registry: nothing worth keeping
        body = render_template("public/search.html", content=Markup(content()))
        if found is not None and found.unavailable:  # the index's fault, not the query's: retry later
            return body, 503, {"Retry-After": "60"}
        return body
    # The same answer from the index shows the same versions (never changed once written);
    # their firms are read again, being few. The catalog's names are in the key: read
    # before the cache's snapshot, a name changed in between must not be kept under it.
    key = result_key(current_language()) + (catalog_digest(fee_types),)
    kept = result_cache.kept(db.session, key, None, content,
                             basis=lambda _snapshot: (found.basis, search_service.shown_firms(db.session, found)),
                             state=http_cache.state_seen())
    return render_template("public/search.html", content=Markup(kept))


def catalog_digest(fee_types: dict) -> str:
    names = "\x1f".join(f"{c.code}\x1e{c.zh}\x1e{c.en}" for c in sorted(fee_types.values(), key=lambda c: c.code))
    return hashlib.blake2b(names.encode(), digest_size=16).hexdigest()


def _search_url(**changes) -> str:
    """This search with some arguments changed (None removes one); back to page 1."""
    args = {k: v for k, v in request.args.items() if k != "page"}
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for("public.search") + ("?" + urlencode(args) if args else "")
