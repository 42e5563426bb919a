"""The invoice check: a shipper's invoice lines against the firm's schedule as published on
the invoice date. Reads only; nothing is written (a line becomes a complaint only when the
shipper files it, through services/complaints.py, which raises UNDISCLOSED).

Each line is matched through the catalog (names, aliases and codes: 单证费, 文件费 and DOC
are one fee type) or, for a name the catalog does not know, the firm's own fee name or code.
It is marked, the first that applies:

    charged_twice    the same fee already charged on an earlier line of this invoice (same
                     firm, date, fee type and unit at the same price, or a second fee of a
                     per-document type under another name: 文件费 and 单证费 on one B/L)
    abolished        the fee type was abolished or merged on that date (catalog or notice)
    not_in_schedule  nothing of that type (in that unit, when given) was published then
    over_cap         the unit price is above a cap in force (PolicyNotice)
    above            the unit price is above the published amount
    as_published     otherwise

Amounts are compared per unit (amount / quantity) in CNY at the rates in force on the
invoice date; where several published items match (sizes, scopes), the highest is the
reference: a line is "above" only when it is above every reading of the schedule.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from .. import codes
from ..interchange.reader import FileRefused, decode_text
from ..models import FeeItemVersion, Firm
from . import checks, history
from .catalog import CatalogIndex, normalise_name
from .complaints import find_firm

MAX_LINES = 200
CENT = Decimal("0.01")
MARKS = ("as_published", "above", "not_in_schedule", "abolished", "over_cap", "charged_twice", "invalid")
#: Units charged once per document: a second fee of the same type is a double charge,
#: whatever it is called.
PER_DOCUMENT = ("per_bl", "per_shipment", "per_declaration")
COLUMNS = ("firm", "fee_name", "unit", "quantity", "amount", "date", "currency")
#: Header words understood in a pasted or uploaded table (normalised).
HEADERS = {
    "firm": "firm", "creditcode": "firm", "企业": "firm", "收费企业": "firm", "统一社会信用代码": "firm",
    "feename": "fee_name", "fee": "fee_name", "收费项目": "fee_name", "费用名称": "fee_name", "项目": "fee_name",
    "unit": "unit", "单位": "unit", "计费单位": "unit",
    "quantity": "quantity", "qty": "quantity", "数量": "quantity",
    "amount": "amount", "金额": "amount",
    "date": "date", "日期": "date", "发票日期": "date", "invoicedate": "date",
    "currency": "currency", "币种": "currency",
}


@dataclass
class InvoiceLine:
    number: int
    firm_text: str = ""
    fee_name: str = ""
    unit: str = ""
    quantity: Decimal = Decimal(1)
    amount: Decimal | None = None
    currency: str = "CNY"
    charged_on: date | None = None
    errors: list = field(default_factory=list)

    @property
    def unit_price(self) -> Decimal | None:
        if self.amount is None or not self.quantity:
            return None
        return (self.amount / self.quantity).quantize(CENT)


@dataclass
class LineResult:
    line: InvoiceLine
    mark: str
    firm: Firm | None = None
    fee_type_code: str = ""
    #: The published version the line was measured against (the highest match).
    published: FeeItemVersion | None = None
    cap: Decimal | None = None
    cap_currency: str = ""
    cap_reference: str = ""
    abolished_from: date | None = None
    #: The earlier line this one repeats (charged_twice).
    repeats: int | None = None

    @property
    def complaint_args(self) -> dict:
        """A complaint form prefilled with this line (the one-step complaint)."""
        line = self.line
        args = {"firm": self.firm.credit_code if self.firm else line.firm_text, "fee_name": line.fee_name,
                "amount": str(line.unit_price or ""), "currency": line.currency,
                "charged_on": line.charged_on.isoformat() if line.charged_on else "",
                "description": _describe(self)}
        if self.published is not None:
            args["item"] = self.published.item_id
        return args

    @property
    def is_as_published(self) -> bool:
        return self.mark == "as_published"


def _describe(result: LineResult) -> str:
    """The complaint's description, in the shipper's language (it reads it before sending)."""
    from ..labels import audit_label

    line = result.line
    text = gettext("Invoice line %(n)s: %(fee)s, %(qty)s × %(price)s = %(amount)s %(currency)s on %(date)s. "
                   "Invoice check: %(mark)s.", n=line.number, fee=line.fee_name, qty=line.quantity,
                   price=line.unit_price, amount=line.amount, currency=line.currency, date=line.charged_on,
                   mark=audit_label("mark", result.mark))
    if result.published is not None:
        text += " " + gettext("Published: %(amount)s %(currency)s.", amount=result.published.amount,
                              currency=result.published.currency)
    if result.cap is not None:
        text += " " + gettext("Cap: %(amount)s %(currency)s.", amount=result.cap, currency=result.cap_currency)
    return text


# --- reading the lines -----------------------------------------------------------------------

def read_upload(content: bytes) -> str:
    """An uploaded CSV as text (UTF-8 or GBK/GB18030, strictly; FileRefused otherwise)."""
    return decode_text(content)[0]


def parse(text: str) -> list[InvoiceLine]:
    """Lines from pasted text or a CSV: comma- or tab-separated, with or without a header
    row; without one the columns are firm, fee name, unit, quantity, amount, date[, currency]."""
    rows = []
    for raw in (text or "").replace("\r\n", "\n").replace("，", ",").split("\n"):
        if not raw.strip():
            continue
        delimiter = "\t" if "\t" in raw else ","
        rows.append([cell.strip() for cell in next(csv.reader(io.StringIO(raw), delimiter=delimiter))])
    if not rows:
        return []
    columns = list(COLUMNS)
    header = [HEADERS.get(normalise_name(cell)) for cell in rows[0]]
    if sum(1 for h in header if h) >= 3:
        columns = [h or "" for h in header]
        rows = rows[1:]
    lines = []
    for number, cells in enumerate(rows[:MAX_LINES + 1], start=1):
        if number > MAX_LINES:
            raise FileRefused(_l("At most %(n)s lines can be checked at once.", n=MAX_LINES))
        lines.append(_line(number, dict(zip(columns, cells))))
    return lines


def _unit(text: str) -> str | None:
    key = (text or "").strip()
    if not key:
        return ""
    for code in codes.UNITS.values():
        if key.lower() in (code.code, code.zh, code.en.lower()):
            return code.code
    return None


def _line(number: int, cells: dict) -> InvoiceLine:
    line = InvoiceLine(number, firm_text=cells.get("firm", ""), fee_name=cells.get("fee_name", ""))
    if not line.firm_text:
        line.errors.append(_l("the firm is missing"))
    if not line.fee_name:
        line.errors.append(_l("the fee name is missing"))
    unit = _unit(cells.get("unit", ""))
    if unit is None:
        line.errors.append(_l("unknown unit “%(unit)s”", unit=cells.get("unit", "")[:40]))
    line.unit = unit or ""
    try:
        line.quantity = Decimal(cells.get("quantity") or "1")
        if not line.quantity.is_finite() or line.quantity <= 0:
            raise InvalidOperation
    except InvalidOperation:
        line.errors.append(_l("the quantity must be a positive number"))
        line.quantity = Decimal(1)
    try:
        line.amount = Decimal((cells.get("amount") or "").replace(",", "")).quantize(CENT)
        if not line.amount.is_finite() or line.amount <= 0:
            raise InvalidOperation
    except InvalidOperation:
        line.errors.append(_l("the amount must be a positive number"))
        line.amount = None
    currency = (cells.get("currency") or "CNY").strip().upper()
    if currency not in codes.CURRENCIES:
        line.errors.append(_l("unknown currency “%(currency)s”", currency=currency[:8]))
    line.currency = currency
    try:
        line.charged_on = date.fromisoformat((cells.get("date") or "").strip())
    except ValueError:
        line.errors.append(_l("the date must be written YYYY-MM-DD"))
    return line


# --- checking them -------------------------------------------------------------------------

def check_invoice(session: Session, lines: list[InvoiceLine]) -> list[LineResult]:
    catalog = CatalogIndex.load(session)
    firms: dict[str, Firm | None] = {}
    schedules: dict[tuple[int, date], list[FeeItemVersion]] = {}
    contexts: dict[date, object] = {}
    seen: dict[tuple, int] = {}
    results = []
    for line in lines:
        if line.errors:
            results.append(LineResult(line, "invalid"))
            continue
        if line.firm_text not in firms:
            firms[line.firm_text] = find_firm(session, line.firm_text)
        firm = firms[line.firm_text]
        if firm is None:
            line.errors.append(_l("no registered firm has this credit code or name"))
            results.append(LineResult(line, "invalid"))
            continue
        on = line.charged_on
        if (firm.id, on) not in schedules:
            schedules[firm.id, on] = history.schedule_on(session, firm, on)
        if on not in contexts:
            contexts[on] = checks.context(session, on)
        results.append(_check_line(line, firm, catalog, schedules[firm.id, on], contexts[on], seen))
    return results


def _check_line(line: InvoiceLine, firm: Firm, catalog: CatalogIndex, schedule, ctx, seen: dict) -> LineResult:
    match = catalog.match(line.fee_name)
    code = match.code if match else ""
    result = LineResult(line, "as_published", firm=firm, fee_type_code=code)
    name_key = normalise_name(line.fee_name)
    matches = [v for v in schedule if (code and v.fee_type_code == code)
               or name_key in (normalise_name(v.name_zh), normalise_name(v.name_en), normalise_name(v.fee_code))]
    if line.unit:
        matches = [v for v in matches if v.unit == line.unit]
    unit = line.unit or (matches[0].unit if matches else "")

    # Charged twice: checked first, so the earlier line is judged on its own merits.
    fee_key = code or name_key
    exact = (firm.id, line.charged_on, fee_key, unit, line.unit_price)
    document = (firm.id, line.charged_on, fee_key, unit) if unit in PER_DOCUMENT else None
    earlier = seen.get(exact) or (seen.get(document) if document else None)
    seen.setdefault(exact, line.number)
    if document:
        seen.setdefault(document, line.number)
    if earlier is not None:
        result.mark, result.repeats = "charged_twice", earlier
        return result

    scope = SimpleNamespace(fee_type_code=code, unit=unit, container_size="", port_list=tuple(firm.port_codes))
    fee_type = catalog.get(code) if code else None
    if fee_type is not None and fee_type.abolished_from and fee_type.abolished_from <= line.charged_on:
        result.mark, result.abolished_from = "abolished", fee_type.abolished_from
        return result
    notice = ctx.policy.in_force(("abolish", "merge"), scope, line.charged_on) if code else None
    if notice is not None:
        result.mark, result.abolished_from, result.cap_reference = "abolished", notice.effective_from, notice.reference
        return result

    if matches:
        result.published = max(matches, key=lambda v: ctx.cny(v.amount, v.currency) or Decimal(0))
    price = ctx.cny(line.unit_price, line.currency)
    cap = ctx.policy.in_force(("cap",), scope, line.charged_on) if code else None
    if not matches:
        result.mark = "not_in_schedule"
    if cap is not None and cap.amount is not None:
        cap_cny = ctx.cny(cap.amount, cap.currency)
        result.cap, result.cap_currency, result.cap_reference = cap.amount, cap.currency, cap.reference
        if price is not None and cap_cny is not None and price > cap_cny and matches:
            result.mark = "over_cap"
            return result
    if not matches:
        return result
    published = ctx.cny(result.published.amount, result.published.currency)
    if price is not None and published is not None and price > published:
        result.mark = "above"
    return result
