"""Firm names held in memory, for the PostgreSQL backend's term matching.

Firm names are the one kind of text that grows with the registry (one per firm: 166,666
at a million items, against a few thousand fee names, contents and catalog texts), and
the words most often searched are in nearly every one of them: "深圳", a district, a
trade word, "货运代理". A GIN index finds such a term's texts quickly, but PostgreSQL then
visits every matching row to read its id — at a million items a term in every firm's
name took 0.7 s (bitmap heap scan of 166,667 rows), against a few milliseconds here.
So each process keeps the firm names of search.text as an inverted index (token → the
positions of the firms holding it, 4 bytes each) and follows their changes through the
change log, as it follows the spans; the other texts are matched by the GIN index.

The tokens are those of the firm's tsvector (pg_tokens.tsvector without pinyin, which
firm names never get): CJK characters, character pairs and stemmed Latin words. A run of
three or more characters is checked on the name itself (pg_tokens.holds), as the Whoosh
backend checks it. tests/test_search_backends.py compares this with the tsvector's answer.
"""
from __future__ import annotations

import threading
from array import array
from functools import lru_cache

import numpy as np

from . import analysis, pg_tokens
from .postings import intersect
from .query import Term

_EMPTY = np.zeros(0, dtype=np.int32)
#: Firm ids a snapshot keeps of the terms it matched (8 bytes each: 32 MB at most), an
#: entry counted as ENTRY_COST ids more (its key and array: a few hundred bytes).
MATCHES_KEPT = 4_000_000
ENTRY_COST = 64


@lru_cache(maxsize=200_000)
def _latin(word: str) -> str:
    # Firm names repeat their English words ("Shenzhen", "Logistics"): stem each once.
    return analysis.latin_term(word)


def tokens(body: str) -> set[str]:
    """The lexemes of a firm name's tsvector: its pair tokens and its characters."""
    out: set[str] = set()
    for kind, piece in analysis.pieces(analysis.normalise(body)):
        if kind == "cjk":
            out.update(piece)
            out.update(analysis.bigrams(piece))
        else:
            out.add(_latin(piece))
    return out


class FirmNames:
    """An immutable snapshot; `changed()` gives the next one."""

    def __init__(self, firm_ids, bodies: list[str], postings: dict[str, array],
                 overrides: dict[int, tuple[str, frozenset]] | None = None):
        self.firm_ids = np.asarray(firm_ids, dtype=np.int64)
        self.bodies = bodies
        self.postings = postings
        #: Firms named anew since the snapshot was built: firm id → (name, its tokens).
        self.overrides = overrides or {}
        self._overridden = np.array(sorted(self.overrides), dtype=np.int64)
        #: Terms matched on this snapshot (by their pieces): a district or trade word in
        #: most names takes milliseconds to check phrase by phrase, and searches repeat.
        self._matched: dict[tuple, np.ndarray] = {}
        self._matched_size = 0
        self._matched_lock = threading.Lock()  # a worker's warm-up thread searches too

    @classmethod
    def build(cls, rows) -> "FirmNames":
        """From (firm id, normalised name) rows, in any order."""
        firm_ids, bodies, postings = [], [], {}
        for index, (firm_id, body) in enumerate(rows):
            firm_ids.append(firm_id)
            bodies.append(body)
            for token in tokens(body):
                found = postings.get(token)
                if found is None:
                    found = postings[token] = array("i")
                found.append(index)
        return cls(firm_ids, bodies, postings)

    def changed(self, rows) -> "FirmNames":
        """The snapshot with these (firm id, normalised name) rows named anew."""
        overrides = dict(self.overrides)
        for firm_id, body in rows:
            overrides[int(firm_id)] = (body, frozenset(tokens(body)))
        return FirmNames(self.firm_ids, self.bodies, self.postings, overrides)

    def __len__(self) -> int:
        return len(self.firm_ids)

    def match(self, term: Term) -> np.ndarray:
        """The ids of the firms whose name holds every piece of the term (read-only)."""
        found = self._matched.get(term.pieces)
        if found is None:
            found = self._match(term)
            found.flags.writeable = False
            # Counted with what an entry costs besides its ids: terms come from the public,
            # and those matching no firm would otherwise be kept for nothing, without end.
            cost = len(found) + ENTRY_COST
            with self._matched_lock:
                if self._matched_size + cost > MATCHES_KEPT:
                    self._matched.clear()
                    self._matched_size = 0
                self._matched[term.pieces] = found
                self._matched_size += cost
        return found

    def _match(self, term: Term) -> np.ndarray:
        needed = _needed(term)
        found = self._intersect(needed)
        phrases = any(kind == "cjk" and len(piece) > 2 for kind, piece in term.pieces)
        if phrases and len(found):
            keep = [pg_tokens.holds(self.bodies[i], term) for i in found.tolist()]
            found = found[np.array(keep, dtype=bool)]
        ids = self.firm_ids[found]
        if len(self._overridden):
            ids = ids[~np.isin(ids, self._overridden)]
            extra = [firm_id for firm_id, (body, held) in self.overrides.items()
                     if needed <= held and (not phrases or pg_tokens.holds(body, term))]
            if extra:
                ids = np.concatenate((ids, np.array(extra, dtype=np.int64)))
        return ids

    def _intersect(self, needed: set[str]) -> np.ndarray:
        if any(token not in self.postings for token in needed):
            return _EMPTY
        return intersect([np.frombuffer(self.postings[token], dtype=np.int32) for token in needed])


def _needed(term: Term) -> set[str]:
    """The tokens a name must hold for the term (a longer run: all its pairs, then checked
    in order)."""
    needed: set[str] = set()
    for kind, piece in term.pieces:
        if kind == "cjk":
            needed.update([piece] if len(piece) <= 2 else analysis.bigrams(piece))
        else:
            needed.add(_latin(piece))
    return needed
