"""Atom feeds of published changes, added to the public blueprint: the whole registry, one
firm, one fee type, one port. Chinese by default as the site, English with ?lang=en; the
session's language does not apply, so a feed's address alone says what it holds."""
from __future__ import annotations

import hashlib

from flask import Response, abort, current_app, request, url_for
from flask_babel import force_locale

from .. import codes
from ..exports import atom
from ..extensions import db
from ..services import compare as compare_service
from ..services import feeds, reads
from .public import bp

#: How long a reader may reuse a feed without asking again (it can always ask with its ETag).
FEED_MAX_AGE = 300


def _feed_lang() -> str:
    return "en" if request.args.get("lang") == "en" else "zh"


def _respond(feed: feeds.Feed, subject, feed_args: dict, page_endpoint: str, **page_args) -> Response:
    lang = _feed_lang()
    external = {"_external": True, **({"lang": lang} if lang != "zh" else {})}
    urls = atom.Urls(
        self_url=url_for(request.endpoint, **feed_args, **external),
        page_url=url_for(page_endpoint, **page_args, **external),
        item_url=lambda item_id: url_for("public.item_history", item_id=item_id, **external),
        firm_url=lambda code: url_for("public.firm", code=code, **external),
    )
    with force_locale(lang):
        document = atom.feed_document(feed, subject, lang, urls, current_app.config["FEED_TAG_AUTHORITY"])
        body = atom.atom_bytes(document)
    response = Response(body, mimetype=atom.ATOM_MIMETYPE)  # Flask adds "; charset=utf-8"
    # The body is a function of the data and the address: its digest is a strong validator.
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.last_modified = document.updated
    response.cache_control.max_age = FEED_MAX_AGE
    return response.make_conditional(request)


@bp.get("/feeds/changes.atom")
def feed_registry():
    return _respond(feeds.registry_feed(db.session), None, {}, "public.home")


@bp.get("/feeds/firms/<code>.atom")
def feed_firm(code: str):
    firm = reads.firm_by_code(db.session, code) or abort(404)
    return _respond(feeds.firm_feed(db.session, firm), firm, {"code": firm.credit_code},
                    "public.firm", code=firm.credit_code)


@bp.get("/feeds/fee-types/<code>.atom")
def feed_fee_type(code: str):
    fee_type = compare_service.find_fee_type(db.session, code) or abort(404)
    return _respond(feeds.fee_type_feed(db.session, fee_type), fee_type, {"code": fee_type.code},
                    "public.compare", code=fee_type.code)


@bp.get("/feeds/ports/<port>.atom")
def feed_port(port: str):
    port = port.upper()
    if port not in codes.PORTS:
        abort(404)
    return _respond(feeds.port_feed(db.session, port), codes.PORTS[port], {"port": port},
                    "public.directory", port=port)
