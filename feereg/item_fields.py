"""Cleaning of the published fields of a fee item, shared by the web forms and imports.

Each cleaner takes what a person typed or a file held, returns the canonical
value, or raises FieldError with a reason a publisher can act on. Firms spell the
closed vocabularies in many ways ("40HC", "每箱", "盐田"), so cleaners accept the
codes, their Chinese and English labels and common trade spellings.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

from . import codes

MAX_AMOUNT = Decimal("999999999999.99")

# Vague disclosures that are not an amount; named so the error says why.
_VAGUE = ("详见", "另议", "面议", "附件", "参考", "see ", "tbd", "negotiable", "as per")

_SIZE_ALIASES = {
    "20": "20", "20GP": "20", "20DC": "20", "20FT": "20", "20'": "20", "20尺": "20", "20英尺": "20",
    "40": "40", "40GP": "40", "40DC": "40", "40FT": "40", "40'": "40", "40尺": "40", "40英尺": "40",
    "40HQ": "40HQ", "40HC": "40HQ", "40'HQ": "40HQ", "40高柜": "40HQ", "40英尺高柜": "40HQ",
    "45": "45", "45HQ": "45", "45HC": "45", "45'": "45", "45英尺": "45",
}
_ANY = {"", "any", "all", "*", "不限", "全部", "所有", "通用", "-"}


class FieldError(ValueError):
    def __init__(self, field: str, message):
        super().__init__(str(message))
        self.field = field
        self.message = message


def text(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    return unicodedata.normalize("NFC", str(raw)).strip()


def _fold(raw) -> str:
    return unicodedata.normalize("NFKC", text(raw)).strip()


def clean_amount(raw, field: str = "amount") -> Decimal:
    if isinstance(raw, bool):
        raise FieldError(field, _l("is not an amount"))
    if isinstance(raw, (int, Decimal)):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    else:
        folded = _fold(raw)
        if not folded:
            raise FieldError(field, _l("is required"))
        lowered = folded.lower()
        if any(word in lowered for word in _VAGUE):
            raise FieldError(field, _l("must be an amount, not a reference (“%(value)s”)", value=folded))
        if re.fullmatch(r"\d+(\.\d+)?\s*[-~至到]\s*\d+(\.\d+)?", folded):
            raise FieldError(field, _l("must be one amount, not a range (“%(value)s”)", value=folded))
        if not re.fullmatch(r"[+]?\d+(\.\d*)?|[+]?\.\d+", folded):
            raise FieldError(field, _l("“%(value)s” is not a plain decimal amount such as 120 or 85.50", value=folded))
        value = Decimal(folded)
    try:
        if value != value.quantize(Decimal("0.01")):
            raise FieldError(field, _l("has more than 2 decimal places"))
    except InvalidOperation:
        raise FieldError(field, _l("is too large")) from None
    if value < 0:
        raise FieldError(field, _l("must not be negative"))
    if value > MAX_AMOUNT:
        raise FieldError(field, _l("is too large"))
    return value.quantize(Decimal("0.01"))


def clean_optional_amount(raw, field: str) -> Decimal | None:
    return None if text(raw) == "" else clean_amount(raw, field)


def clean_choice(raw, table: dict[str, codes.Code], field: str, allow_any: bool = False) -> str:
    value = _fold(raw)
    if allow_any and value.lower() in _ANY:
        return ""
    if not value:
        raise FieldError(field, _l("is required"))
    for entry in table.values():
        if value.lower() in (entry.code.lower(), entry.zh.lower(), entry.en.lower()):
            return entry.code
    allowed = ", ".join(table)
    return_msg = _l("“%(value)s” is not one of: %(allowed)s", value=value, allowed=allowed)
    raise FieldError(field, return_msg)


def clean_container_size(raw, field: str = "container_size") -> str:
    value = _fold(raw).upper().replace(" ", "").replace("FEET", "FT").replace("’", "'")
    if value.lower() in _ANY:
        return ""
    if value in _SIZE_ALIASES:
        return _SIZE_ALIASES[value]
    raise FieldError(field, _l("“%(value)s” is not a container size (20, 40, 40HQ, 45 or empty for any)", value=text(raw)))


def clean_ports(raw, field: str = "ports", required: bool = False) -> str:
    values = raw if isinstance(raw, (list, tuple)) else re.split(r"[;；,，、|/\s]+", _fold(raw))
    found = []
    for part in values:
        part = _fold(part)
        if not part:
            continue
        found.append(clean_choice(part, codes.PORTS, field))
    if required and not found:
        raise FieldError(field, _l("name at least one port"))
    return codes.join_list(found)


def clean_date(raw, field: str = "effective_from") -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    value = _fold(raw)
    if not value:
        raise FieldError(field, _l("is required"))
    normalised = re.sub(r"[年月/.]", "-", value).replace("日", "")
    try:
        parts = [int(p) for p in normalised.split("-")]
        if len(parts) != 3 or parts[0] < 1900:
            raise ValueError
        return date(*parts)
    except (ValueError, TypeError, OverflowError):  # OverflowError: a 20-digit day
        raise FieldError(field, _l("“%(value)s” is not a date (write YYYY-MM-DD)", value=value)) from None


def clean_tiers(raw, field: str = "tiers") -> str:
    """Canonical tier text: optional 'free:N', then contiguous day bands 'a-b:amount'."""
    value = _fold(raw).replace(" ", "").replace("；", ";")
    if not value:
        return ""
    free_days, bands = 0, []
    for part in [p for p in value.split(";") if p]:
        key, sep, amount = part.partition(":")
        if not sep:
            raise FieldError(field, _l("“%(part)s” should look like 8-14:85", part=part))
        if key.lower() == "free":
            if bands or not re.fullmatch(r"[0-9]{1,5}", amount):
                raise FieldError(field, _l("free days come first, as free:7"))
            free_days = int(amount)
            continue
        # ASCII digits, at most five: int() of a 5,000-digit or non-ASCII "digit" raises.
        match = re.fullmatch(r"([0-9]{1,5})-([0-9]{0,5})", key)
        if not match:
            raise FieldError(field, _l("“%(part)s” should look like 8-14:85", part=part))
        start, end = int(match.group(1)), int(match.group(2)) if match.group(2) else None
        expected = (bands[-1][1] + 1) if bands and bands[-1][1] else free_days + 1
        if bands and bands[-1][1] is None:
            raise FieldError(field, _l("nothing may follow an open band such as 22-"))
        if start != expected or (end is not None and end < start):
            raise FieldError(field, _l("day bands must follow on from day %(day)s without gaps", day=expected))
        bands.append((start, end, clean_amount(amount, field)))
    if not bands:
        raise FieldError(field, _l("give at least one day band, e.g. 8-14:85"))
    parts = [f"free:{free_days}"] if free_days else []
    parts += [f"{s}-{e if e is not None else ''}:{_plain(a)}" for s, e, a in bands]
    return ";".join(parts)


def parse_tiers(value: str) -> tuple[int, list[tuple[int, int | None, Decimal]]]:
    """(free days, [(first day, last day or None, daily amount)]) from canonical tier text."""
    free, bands = 0, []
    for part in [p for p in (value or "").split(";") if p]:
        key, _, amount = part.partition(":")
        if key == "free":
            free = int(amount)
        else:
            start, _, end = key.partition("-")
            bands.append((int(start), int(end) if end else None, Decimal(amount)))
    return free, bands


def _plain(amount: Decimal) -> str:
    text_value = format(amount.normalize(), "f")
    return text_value


def clean_bool(raw, field: str, default: bool = True) -> bool:
    value = _fold(raw).lower()
    if value == "":
        return default
    if value in ("1", "yes", "y", "true", "是", "含", "含税"):
        return True
    if value in ("0", "no", "n", "false", "否", "不含", "不含税"):
        return False
    raise FieldError(field, _l("“%(value)s” is not yes or no", value=value))


def clean_text(raw, field: str, max_length: int, required: bool = False) -> str:
    value = text(raw)
    if required and not value:
        raise FieldError(field, _l("is required"))
    if len(value) > max_length:
        raise FieldError(field, _l("is longer than %(n)s characters", n=max_length))
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise FieldError(field, _l("contains control characters"))
    return value


def clean_item_values(raw: dict, catalog) -> tuple[dict, list[FieldError]]:
    """Clean one fee item's fields (a form's data or a file row).

    Returns the canonical values and every problem found, not just the first, so a
    publisher can fix a whole row at once. `catalog` is a services.catalog.CatalogIndex.
    """
    values: dict = {}
    errors: list[FieldError] = []

    def take(field, cleaner, *args, **kw):
        try:
            values[field] = cleaner(raw.get(field), *args, **kw)
        except FieldError as exc:
            errors.append(exc)

    fee_type = _resolve_fee_type(raw, catalog, errors)
    values["fee_type_code"] = fee_type.code if fee_type else None
    take("fee_code", clean_text, "fee_code", 64)
    take("name_zh", clean_text, "name_zh", 200)
    if not values.get("name_zh") and fee_type is not None and "name_zh" not in {e.field for e in errors}:
        values["name_zh"] = fee_type.name_zh
    if not values.get("name_zh") and not any(e.field in ("name_zh", "fee_type") for e in errors):
        errors.append(FieldError("name_zh", _l("is required")))
    take("name_en", clean_text, "name_en", 200)
    if fee_type is not None and not values.get("name_en"):
        values["name_en"] = fee_type.name_en if values.get("name_zh") == fee_type.name_zh else values.get("name_en", "")
    # Without a fee type (already an error) there is no default to miss: say nothing more.
    if text(raw.get("unit")):
        take("unit", clean_choice, codes.UNITS, "unit")
    elif fee_type is not None:
        values["unit"] = fee_type.unit
    take("container_size", clean_container_size)
    take("cargo_scope", clean_choice, codes.CARGO_SCOPES, "cargo_scope", allow_any=True)
    take("trade", clean_choice, codes.TRADES, "trade", allow_any=True)
    take("direction", clean_choice, codes.DIRECTIONS, "direction", allow_any=True)
    take("amount", clean_amount)
    if text(raw.get("currency")):
        take("currency", clean_choice, codes.CURRENCIES, "currency")
    else:
        values["currency"] = "CNY"
    take("tax_included", clean_bool, "tax_included")
    take("tax_rate", clean_optional_amount, "tax_rate")
    if values.get("tax_rate") is not None and values["tax_rate"] > 100:
        errors.append(FieldError("tax_rate", _l("is a percentage and cannot exceed 100")))
    take("tiers", clean_tiers)
    if text(raw.get("pricing_basis")):
        take("pricing_basis", clean_choice, codes.PRICING_BASES, "pricing_basis")
    elif fee_type is not None:
        values["pricing_basis"] = fee_type.pricing_basis
    take("service_content", clean_text, "service_content", 4000)
    take("legal_basis", clean_text, "legal_basis", 2000)
    take("ports", clean_ports)
    if values.get("tiers") and values.get("unit") not in ("per_container_day", "per_day"):
        errors.append(FieldError("tiers", _l("day bands only apply to a per-day unit")))
    return values, errors


def _resolve_fee_type(raw: dict, catalog, errors: list[FieldError]):
    given = text(raw.get("fee_type"))
    if given:
        fee_type = catalog.get(given)
        if fee_type is None:
            match = catalog.match(given)
            fee_type = catalog.get(match.code) if match else None
        if fee_type is None:
            errors.append(FieldError("fee_type", _unknown_type_message(given, catalog)))
        return fee_type
    name = text(raw.get("name_zh")) or text(raw.get("name_en"))
    if not name:
        errors.append(FieldError("fee_type", _l("give a fee type code or a fee name")))
        return None
    match = catalog.match(name) or catalog.match(text(raw.get("name_en")))
    if match is None:
        errors.append(FieldError("fee_type", _unknown_type_message(name, catalog)))
        return None
    return catalog.get(match.code)


def _unknown_type_message(name: str, catalog):
    suggestions = catalog.suggest(name)
    if suggestions:
        return _l("“%(name)s” is not a catalog fee type; did you mean: %(suggestions)s?",
                  name=name, suggestions="; ".join(suggestions))
    return _l("“%(name)s” is not a catalog fee type", name=name)
