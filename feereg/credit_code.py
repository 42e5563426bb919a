"""Unified social credit code (统一社会信用代码) checks per GB 32100-2015."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 symbols: no I, O, S, V, Z
WEIGHTS = [pow(3, i, 31) for i in range(17)]
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


class InvalidCreditCode(ValueError):
    pass


def normalise(raw: str) -> str:
    # Full-width letters and digits turn up in codes typed with a Chinese IME.
    text = "".join(chr(ord(c) - 0xFEE0) if "！" <= c <= "～" else c for c in (raw or ""))
    return text.strip().replace(" ", "").upper()


def check_digit(first17: str) -> str:
    total = sum(_VALUE[ch] * w for ch, w in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def validate(raw: str) -> str:
    """Return the normalised code, or raise InvalidCreditCode saying what is wrong."""
    code = normalise(raw)
    if len(code) != 18:
        raise InvalidCreditCode(_l("must be 18 characters, got %(n)s", n=len(code)))
    bad = sorted({ch for ch in code if ch not in _VALUE})
    if bad:
        raise InvalidCreditCode(
            _l("contains characters not allowed in a credit code: %(chars)s", chars=" ".join(bad))
        )
    if not code[2:8].isdigit():
        raise InvalidCreditCode(_l("characters 3–8 must be the administrative division code (digits)"))
    expected = check_digit(code[:17])
    if code[17] != expected:
        raise InvalidCreditCode(_l("check digit is %(got)s, expected %(expected)s", got=code[17], expected=expected))
    return code


def is_valid(raw: str) -> bool:
    try:
        validate(raw)
    except InvalidCreditCode:
        return False
    return True


def make(first17: str) -> str:
    """Complete a 17-character body with its check digit (for tests and demo data)."""
    return first17 + check_digit(first17)
