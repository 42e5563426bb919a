"""Text analysis shared by indexing and querying.

Chinese has no spaces between words, and a dictionary segmenter (jieba) both misses
partial words ("吊箱" in "港外堆场吊箱费") and costs seconds at every process start.
So CJK text is indexed as single characters plus overlapping character pairs: a one
character query matches a character, a longer one matches its run of pairs as a
phrase. Whitespace between two CJK characters is dropped before pairing, so
"港外堆场 吊箱费" and "港外堆场吊箱费" give the same pairs. Latin words are lowercased
and stemmed (English Porter), digits kept as they are.

Pinyin (full syllables and initials) is an optional extra: `pypinyin` is imported
only when a text is first converted, never at start-up.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from whoosh.analysis import Token, Tokenizer
from whoosh.lang.porter import stem

_CJK_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_CLASS}]")
#: A run of CJK characters, or a Latin/digit word.
_PIECE = re.compile(f"([{_CJK_CLASS}]+)|([a-z0-9]+)")
#: Whitespace (and other separators typed inside a Chinese name) between two CJK characters.
_CJK_GAP = re.compile(f"(?<=[{_CJK_CLASS}])[\\s\u3000]+(?=[{_CJK_CLASS}])")
#: Pinyin sequences indexed per CJK run: up to this many syllables long.
MAX_PINYIN_SYLLABLES = 6


def normalise(text: str) -> str:
    """Full-width forms folded (NFKC), lowercased, CJK-internal whitespace dropped."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return _CJK_GAP.sub("", text)


def is_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def pieces(text: str) -> list[tuple[str, str]]:
    """("cjk", run) and ("latin", word) pieces of a normalised text, in order."""
    out = []
    for match in _PIECE.finditer(text):
        if match.group(1):
            out.append(("cjk", match.group(1)))
        else:
            out.append(("latin", match.group(2)))
    return out


def latin_term(word: str) -> str:
    """Stem alphabetic words; digits and codes with digits (40hq) stay as typed."""
    return stem(word) if word.isalpha() else word


def bigrams(run: str) -> list[str]:
    return [run[i:i + 2] for i in range(len(run) - 1)]


def unigram_tokens(text: str) -> list[str]:
    return [ch for kind, piece in pieces(normalise(text)) if kind == "cjk" for ch in piece]


def pair_tokens(text: str) -> list[str]:
    """Character pairs of CJK runs and stemmed Latin words, in text order (positions matter:
    a query of three or more characters is a phrase of its pairs)."""
    out: list[str] = []
    for kind, piece in pieces(normalise(text)):
        out.extend(bigrams(piece) if kind == "cjk" else [latin_term(piece)])
    return out


@lru_cache(maxsize=1)
def _pinyin_module():
    try:
        import pypinyin  # noqa: PLC0415 - imported on first use: it costs ~0.15 s
    except ImportError:  # an optional extra: search works without it
        return None
    return pypinyin


def pinyin_available() -> bool:
    return _pinyin_module() is not None


def pinyin_tokens(text: str) -> list[str]:
    """Every run of up to MAX_PINYIN_SYLLABLES syllables of each CJK run, as full pinyin
    ("duichang") and as initials of two or more syllables ("dc")."""
    module = _pinyin_module()
    if module is None:
        return []
    out: list[str] = []
    for kind, piece in pieces(normalise(text)):
        if kind != "cjk":
            continue
        syllables = module.lazy_pinyin(piece, errors="ignore")
        for start in range(len(syllables)):
            for end in range(start + 1, min(len(syllables), start + MAX_PINYIN_SYLLABLES) + 1):
                chunk = syllables[start:end]
                out.append("".join(chunk))
                if len(chunk) > 1:
                    out.append("".join(s[0] for s in chunk if s))
    # Long names: a whole-name initials token lets "mtczf" match five syllables and more.
    for kind, piece in pieces(normalise(text)):
        if kind == "cjk" and len(piece) > MAX_PINYIN_SYLLABLES:
            out.append("".join(s[0] for s in module.lazy_pinyin(piece, errors="ignore") if s))
    return out


class FunctionTokenizer(Tokenizer):
    """A Whoosh tokenizer over one of the token functions above.

    Whoosh pickles the schema into the index, so the function is kept by name and
    looked up in this module, never as a closure."""

    def __init__(self, function_name: str):
        self.function_name = function_name

    def __eq__(self, other):
        return isinstance(other, FunctionTokenizer) and other.function_name == self.function_name

    def __hash__(self):
        return hash(self.function_name)

    def __call__(self, value, positions=False, chars=False, keeporiginal=False, removestops=True,
                 start_pos=0, start_char=0, tokenize=True, mode="", **kwargs):
        function = globals()[self.function_name]
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        texts = function(value) if tokenize else [value]
        for offset, text in enumerate(texts):
            token.text = text
            token.boost = 1.0
            token.stopped = False
            if keeporiginal:
                token.original = text
            if positions:
                token.pos = start_pos + offset
            if chars:  # offsets are not kept: highlighting is done on the original text
                token.startchar = start_char
                token.endchar = start_char
            yield token


def unigram_analyzer():
    return FunctionTokenizer("unigram_tokens")


def pair_analyzer():
    return FunctionTokenizer("pair_tokens")


def pinyin_analyzer():
    return FunctionTokenizer("pinyin_tokens")
