"""Feeds of published changes as Atom 1.0 (RFC 4287) documents.

The XML is built with ElementTree, never by joining strings, so a firm's fee name or reason
cannot break the document; the few characters XML 1.0 cannot hold at all (C0 controls
other than tab and newlines) are replaced, since a feed reader rejects the whole feed for
one of them.

Ids are `tag:` URIs (RFC 4151) built from data that never changes — a version is its
firm's credit code and its position in the firm's chain — so an entry keeps its id when
the site moves to another host or the feed is read in the other language.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from flask_babel import gettext as _

from .. import codes
from ..services.feeds import CHANGED, NEW, WITHDRAWN, Change, Feed

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MIMETYPE = "application/atom+xml"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: The date in every tag: URI; the authority (FEED_TAG_AUTHORITY) owned the name then.
TAG_DATE = "2026"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Feeds that begin before anything was published still need an <updated>.
EPOCH = datetime(2024, 1, 1)


@dataclass
class Link:
    href: str
    rel: str = "alternate"
    type: str | None = None


@dataclass
class Entry:
    id: str
    title: str
    updated: datetime
    summary: str
    links: list[Link]
    author: str
    author_uri: str | None = None
    #: (term, label) pairs.
    categories: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Document:
    id: str
    title: str
    updated: datetime
    lang: str
    links: list[Link]
    author: str
    entries: list[Entry]
    subtitle: str = ""


def rfc3339(moment: datetime) -> str:
    """A stored time (naive UTC) as an Atom date."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(text) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _add(parent: ET.Element, name: str, text=None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, name, {k: _clean(v) for k, v in attrs.items() if v})
    if text is not None:
        element.text = _clean(text)
    return element


def _links(parent: ET.Element, links: list[Link]) -> None:
    for link in links:
        _add(parent, "link", href=link.href, rel=link.rel, type=link.type)


def atom_bytes(document: Document) -> bytes:
    # Unprefixed names under a default namespace declared on the root: the Atom elements
    # (ElementTree's default_namespace option refuses unqualified attribute names).
    root = ET.Element("feed", {"xmlns": ATOM_NS, _XML_LANG: "zh-CN" if document.lang == "zh" else document.lang})
    _add(root, "id", document.id)
    _add(root, "title", document.title)
    if document.subtitle:
        _add(root, "subtitle", document.subtitle)
    _add(root, "updated", rfc3339(document.updated))
    _links(root, document.links)
    _add(_add(root, "author"), "name", document.author)
    _add(root, "generator", "feereg")
    for entry in document.entries:
        element = _add(root, "entry")
        _add(element, "id", entry.id)
        _add(element, "title", entry.title)
        # A version never changes once published: its updated and published times agree.
        _add(element, "updated", rfc3339(entry.updated))
        _add(element, "published", rfc3339(entry.updated))
        author = _add(element, "author")
        _add(author, "name", entry.author)
        if entry.author_uri:
            _add(author, "uri", entry.author_uri)
        _links(element, entry.links)
        for term, label in entry.categories:
            _add(element, "category", term=term, label=label)
        _add(element, "summary", entry.summary, type="text")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --- the registry's changes as a document ---------------------------------------------------

def version_tag(authority: str, credit_code: str, seq: int) -> str:
    return f"tag:{authority},{TAG_DATE}:version/{credit_code}/{seq}"


def feed_tag(authority: str, feed: Feed, lang: str) -> str:
    path = f"feed/{feed.scope}" + (f"/{feed.key}" if feed.key else "")
    return f"tag:{authority},{TAG_DATE}:{path}" + ("" if lang == "zh" else f"/{lang}")


def _money(amount, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _fee_name(version, lang: str) -> str:
    return version.name_en if lang == "en" and version.name_en else version.name_zh


def _scope(version, lang: str) -> str:
    parts = [codes.label(codes.UNITS, version.unit, lang)]
    parts += [codes.label(table, value, lang) for table, value in (
        (codes.CONTAINER_SIZES, version.container_size), (codes.CARGO_SCOPES, version.cargo_scope),
        (codes.TRADES, version.trade), (codes.DIRECTIONS, version.direction)) if value]
    return " · ".join(parts)


def change_label(what: str) -> str:
    return {NEW: _("new"), CHANGED: _("changed"), WITHDRAWN: _("withdrawn")}[what]


def entry_title(change: Change, lang: str) -> str:
    v = change.version
    return _("%(firm)s · %(fee)s · %(amount)s (%(change)s)", firm=v.firm.display_name(lang),
             fee=_fee_name(v, lang), amount=_money(v.amount, v.currency), change=change_label(change.what))


def entry_summary(change: Change, lang: str) -> str:
    v, before = change.version, change.previous
    when = v.effective_from.isoformat()
    if change.what == WITHDRAWN:
        text = _("Withdrawn, effective from %(date)s (it was %(amount)s, %(scope)s).", date=when,
                 amount=_money(v.amount, v.currency), scope=_scope(v, lang))
    elif change.what == NEW:
        text = _("New fee: %(amount)s, %(scope)s, effective from %(date)s.", amount=_money(v.amount, v.currency),
                 scope=_scope(v, lang), date=when)
    elif (before.amount, before.currency) != (v.amount, v.currency):
        text = _("Amount %(old)s → %(new)s, %(scope)s, effective from %(date)s.",
                 old=_money(before.amount, before.currency), new=_money(v.amount, v.currency),
                 scope=_scope(v, lang), date=when)
    else:
        text = _("Amount unchanged at %(amount)s; other details changed, %(scope)s, effective from %(date)s.",
                 amount=_money(v.amount, v.currency), scope=_scope(v, lang), date=when)
    if v.reason:
        text += " " + _("Reason: %(reason)s", reason=v.reason)
    return text


def feed_title(feed: Feed, subject, lang: str) -> str:
    site = _("Port Fee Registry")
    if feed.scope == "firm":
        return _("%(site)s: fee changes of %(firm)s", site=site, firm=subject.display_name(lang))
    if feed.scope == "fee_type":
        return _("%(site)s: changes to %(fee)s (%(code)s) across firms", site=site,
                 fee=subject.display_name(lang), code=subject.code)
    if feed.scope == "port":
        return _("%(site)s: fee changes at %(port)s", site=site, port=codes.label(codes.PORTS, feed.key, lang))
    return _("%(site)s: latest published changes", site=site)


@dataclass
class Urls:
    """Absolute addresses the document points to; the view builds them with url_for."""
    self_url: str
    page_url: str
    item_url: Callable[[int], str]
    firm_url: Callable[[str], str]


def feed_document(feed: Feed, subject, lang: str, urls: Urls, authority: str) -> Document:
    entries = []
    for change in feed.changes:
        v = change.version
        categories = [(v.fee_type_code, v.fee_type.display_name(lang) if v.fee_type else v.fee_type_code)]
        entries.append(Entry(
            id=version_tag(authority, v.firm.credit_code, v.seq), title=entry_title(change, lang),
            updated=v.published_at, summary=entry_summary(change, lang),
            links=[Link(urls.item_url(v.item_id), "alternate", "text/html")],
            author=v.firm.display_name(lang), author_uri=urls.firm_url(v.firm.credit_code),
            categories=categories,
        ))
    updated = feed.updated or getattr(subject, "created_at", None) or EPOCH
    return Document(
        id=feed_tag(authority, feed, lang), title=feed_title(feed, subject, lang), updated=updated, lang=lang,
        links=[Link(urls.self_url, "self", ATOM_MIMETYPE), Link(urls.page_url, "alternate", "text/html")],
        author=_("Port Fee Registry"), entries=entries,
        subtitle=_("Fees are published by the firms themselves; every change is kept as tamper-evident history."),
    )
