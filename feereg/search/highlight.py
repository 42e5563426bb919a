"""Marking what matched in a text shown on the results page.

Done on the original text (not from index offsets) and escaped piece by piece, so a
firm name or a query holding markup can never inject it: only our own <mark> tags
are unescaped.
"""
from __future__ import annotations

import re

from markupsafe import Markup, escape

from .analysis import latin_term
from .query import ParsedQuery

_WORD = re.compile(r"[A-Za-z0-9]+")


def _spans(text: str, query: ParsedQuery) -> list[tuple[int, int]]:
    spans = []
    for run in query.cjk_runs:
        # Spaces typed between the characters of a Chinese name still match.
        pattern = r"\s*".join(re.escape(ch) for ch in run)
        spans.extend(m.span() for m in re.finditer(pattern, text))
    keys = {latin_term(w) for w in query.latin_words}
    words = set(query.latin_words)
    for match in _WORD.finditer(text):
        word = match.group().lower()
        if word in words or latin_term(word) in keys:
            spans.append(match.span())
    return spans


def highlight(text: str | None, query: ParsedQuery) -> Markup:
    text = text or ""
    spans = sorted(_spans(text, query))
    out, at = [], 0
    for start, end in spans:
        if end <= at:
            continue
        start = max(start, at)
        out.append(escape(text[at:start]))
        out.append(Markup("<mark>") + escape(text[start:end]) + Markup("</mark>"))
        at = end
    out.append(escape(text[at:]))
    return Markup("").join(out)
