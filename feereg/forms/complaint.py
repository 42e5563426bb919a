"""A shipper's forms: a complaint about a charge, and the invoice check."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileAllowed, FileField
from wtforms import DateField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from .. import codes
from ..services.registry import today
from .base import BaseForm, code_choices


class ComplaintForm(BaseForm):
    firm = StringField(_l("Firm (credit code or full name)"), validators=[InputRequired(), Length(max=200)])
    fee_name = StringField(_l("What was charged (the fee's name on the invoice)"),
                           validators=[InputRequired(), Length(max=200)])
    amount = StringField(_l("Amount charged (per unit)"), validators=[InputRequired(), Length(max=20)])
    currency = SelectField(_l("Currency"), default="CNY")
    charged_on = DateField(_l("Date of the charge"), validators=[InputRequired()])
    description = TextAreaField(_l("What happened"), validators=[InputRequired(), Length(max=4000)],
                                description=_l("The invoice number, the shipment, what you were told."))
    contact = StringField(_l("Your contact (name, phone or e-mail)"), validators=[Optional(), Length(max=200)],
                          description=_l("Optional; seen by the regulator only, never by the firm or the public."))
    item = HiddenField(validators=[Optional()])

    def __init__(self, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency.choices = code_choices(codes.CURRENCIES, lang)

    def validate_amount(self, field):
        try:
            value = Decimal((field.data or "").replace(",", "").strip())
        except InvalidOperation:
            raise ValidationError(_l("is not an amount")) from None
        if not value.is_finite() or value <= 0 or value >= Decimal("100000000"):
            raise ValidationError(_l("must be above zero"))

    def validate_charged_on(self, field):
        if field.data and field.data > today():
            raise ValidationError(_l("cannot be in the future"))

    def validate_item(self, field):
        if field.data and not str(field.data).isdigit():
            raise ValidationError(_l("is not a fee item"))

    @property
    def values(self) -> dict:
        return {"firm_text": self.firm.data, "fee_name": self.fee_name.data,
                "amount": (self.amount.data or "").replace(",", "").strip(), "currency": self.currency.data,
                "charged_on": self.charged_on.data, "description": self.description.data,
                "contact": self.contact.data, "item_id": int(self.item.data) if self.item.data else None}


class InvoiceForm(BaseForm):
    lines = TextAreaField(_l("Invoice lines"), validators=[Optional(), Length(max=40_000)],
                          description=_l("One line per charge: firm (credit code or name), fee name, unit, "
                                         "quantity, amount, date (YYYY-MM-DD)[, currency], separated by commas "
                                         "or tabs (paste from a spreadsheet)."))
    file = FileField(_l("Or upload a CSV file"), validators=[FileAllowed(["csv", "txt"], _l("CSV files only"))])
