"""The analyser's tokens as PostgreSQL tsvector and tsquery values.

The tsvector is written from feereg.search.analysis, never from to_tsvector(): PostgreSQL's
parsers do not split Chinese, and the same tokens on both sides are what makes this
backend find exactly what the Whoosh backend finds. A text's tsvector holds

* its character pairs and stemmed Latin words, each at its position in
  analysis.pair_tokens() (1-based): a run of three or more characters is the phrase
  'ab' <-> 'bc' <-> 'cd', which is exactly Whoosh's check of the pairs' order;
* its CJK characters, without positions (a one-character query);
* its pinyin, prefixed with "py_" (a Latin word may match an English stem or pinyin, and
  the two must not mix: "man" the word is not "man" the syllable).

A tsvector keeps positions up to 16,383 and at most 256 per lexeme. A text that needs
more (a service content of many thousand characters) is marked `verify`: its phrases
are checked on its stored body in Python instead, as the Whoosh backend does for every
text, so no limit changes an answer. Lexemes longer than a query can be (a term is at
most 200 characters) are left out: no query could match them, and PostgreSQL refuses
lexemes over 2 kB.

Every lexeme is made of CJK characters, ASCII letters and digits, or "py_" and letters
(see analysis.pieces), so the literals below need no escaping; `_quoted` refuses
anything else rather than trust it, and pinyin tokens that are not letters are dropped.
"""
from __future__ import annotations

import re

from . import analysis
from .query import MAX_QUERY_CHARS, Term

#: PostgreSQL's largest tsvector position, and most positions kept per lexeme.
MAX_POSITION = 16_383
MAX_POSITIONS_PER_LEXEME = 256
#: Longer lexemes cannot equal any query's: they are not stored.
MAX_LEXEME_CHARS = MAX_QUERY_CHARS
PINYIN_PREFIX = "py_"

_LEXEME = re.compile(f"[{analysis._CJK_CLASS}a-z0-9_]+")
_PINYIN = re.compile("[a-z0-9]+")


def _quoted(lexeme: str) -> str:
    if not _LEXEME.fullmatch(lexeme):
        raise ValueError(f"not an analyser token: {lexeme!r}")
    return f"'{lexeme}'"


def tsvector(text: str, pinyin: bool) -> tuple[str, bool]:
    """The tsvector literal of a text, and whether its phrases need checking on its body."""
    positions: dict[str, list[int]] = {}
    verify = False
    for index, token in enumerate(analysis.pair_tokens(text), 1):
        if len(token) > MAX_LEXEME_CHARS:
            continue
        kept = positions.setdefault(token, [])
        if index > MAX_POSITION or len(kept) >= MAX_POSITIONS_PER_LEXEME:
            verify = True
            if not kept:
                kept.append(MAX_POSITION)  # present for matching; its phrases are verified
            continue
        kept.append(index)
    for char in analysis.unigram_tokens(text):
        positions.setdefault(char, [])
    if pinyin:
        for token in analysis.pinyin_tokens(text):
            # A query's Latin word is letters and digits: a syllable with anything else
            # (pypinyin's output is letters) could never be asked for.
            if len(token) <= MAX_LEXEME_CHARS and _PINYIN.fullmatch(token):
                positions.setdefault(PINYIN_PREFIX + token, [])
    parts = []
    for lexeme, at in positions.items():
        parts.append(_quoted(lexeme) + (":" + ",".join(map(str, at)) if at else ""))
    return " ".join(parts), verify


def term_queries(term: Term) -> tuple[str, str | None]:
    """The tsquery a text must match to hold every piece of the term, and — when the term
    has runs of three or more characters — the looser query (pairs in any order) that
    finds the `verify` texts' candidates. None when the term has no such run."""
    exact, loose, phrases = [], [], False
    for kind, piece in term.pieces:
        if kind == "cjk":
            if len(piece) <= 2:
                exact.append(_quoted(piece))
                loose.append(_quoted(piece))
            else:
                pairs = [_quoted(p) for p in analysis.bigrams(piece)]
                exact.append("(" + " <-> ".join(pairs) + ")")
                loose.append("(" + " & ".join(dict.fromkeys(pairs)) + ")")
                phrases = True
        else:
            options = [_quoted(analysis.latin_term(piece))]
            if piece.isalpha() and len(piece) >= 2:
                options.append(_quoted(PINYIN_PREFIX + piece))
            atom = "(" + " | ".join(options) + ")"
            exact.append(atom)
            loose.append(atom)
    return " & ".join(exact), (" & ".join(loose) if phrases else None)


def holds(body: str, term: Term) -> bool:
    """Whether a normalised text holds every CJK run of the term — a character or pair as a
    token, a longer run as its pairs in order: the Whoosh backend's phrase check."""
    tokens = None
    for kind, run in term.pieces:
        if kind != "cjk" or run in body:
            continue
        if len(run) <= 2:
            return False
        tokens = tokens if tokens is not None else analysis.pair_tokens(body)
        pairs = analysis.bigrams(run)
        n = len(pairs)
        if not any(tokens[i:i + n] == pairs for i in range(len(tokens) - n + 1)):
            return False
    return True
