"""Turning what a user typed into search terms, or into a message saying why not.

Whatever arrives in `?q=` is untrusted: it is never handed to a query language.
Terms are separated by spaces and ANDed (each may match a different text of an
item: "盐田 码头操作费" is a port and a fee name); a quoted phrase is one term.
Inside a term, CJK runs and Latin words must all occur in one text.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from .analysis import bigrams, latin_term, normalise, pieces

MAX_QUERY_CHARS = 200
MAX_TERMS = 8


class QueryError(ValueError):
    """The query cannot be searched; str() is a message for the user."""


@dataclass(frozen=True)
class Term:
    #: As the user wrote it (normalised), for messages and highlighting.
    text: str
    #: ("cjk", run) and ("latin", word) pieces; all must occur in one text.
    pieces: tuple[tuple[str, str], ...]


@dataclass
class ParsedQuery:
    terms: list[Term]
    #: Things the user should know (a quote ignored, characters dropped).
    notices: list = field(default_factory=list)

    @property
    def cjk_runs(self) -> list[str]:
        return [p for t in self.terms for kind, p in t.pieces if kind == "cjk"]

    @property
    def latin_words(self) -> list[str]:
        return [p for t in self.terms for kind, p in t.pieces if kind == "latin"]


#: Control and invisible formatting characters, and lone surrogates (a str from a caller
#: other than a request can hold one; it cannot be encoded into a page or an index term).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff\ud800-\udfff]")


def parse(raw: str | None) -> ParsedQuery:
    raw = raw or ""
    if len(raw) > MAX_QUERY_CHARS:
        raise QueryError(_l("The search is too long: use at most %(n)s characters.", n=MAX_QUERY_CHARS))
    notices = []
    cleaned = _CONTROL.sub(" ", raw)
    if cleaned != raw:
        notices.append(_l("Invisible control characters in the search were ignored."))
    cleaned = unicodedata.normalize("NFKC", cleaned).replace("“", '"').replace("”", '"')
    if cleaned.count('"') % 2:
        notices.append(_l("An unmatched quotation mark was ignored."))
        cleaned = cleaned.replace('"', " ")
    if not cleaned.strip():
        raise QueryError(_l("Type a fee, a firm, a port or a code to search for, e.g. 码头操作费, THC or 盐田."))
    parts = re.findall(r'"([^"]*)"|(\S+)', cleaned)
    terms: list[Term] = []
    for quoted, word in parts:
        text = normalise(quoted or word)
        found = tuple(pieces(text))
        if found:
            terms.append(Term(text.strip(), found))
    if not terms:
        raise QueryError(_l("The search has no letters, digits or Chinese characters to look for "
                            "(wildcards such as * are not needed): type a fee, a firm, a port or a code."))
    if len(terms) > MAX_TERMS:
        raise QueryError(_l("Use at most %(n)s words in one search.", n=MAX_TERMS))
    return ParsedQuery(terms, notices)


def pair_sequence(run: str) -> list[str]:
    """The character pairs a CJK run of two or more characters must match, in order."""
    return bigrams(run)


def latin_key(word: str) -> str:
    return latin_term(word)
