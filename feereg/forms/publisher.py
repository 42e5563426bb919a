from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (BooleanField, DateField, HiddenField, IntegerField, SelectField, StringField,
                     SubmitField, TextAreaField)
from wtforms.validators import InputRequired, Length, Optional

from .. import codes
from ..item_fields import clean_item_values
from ..services.registry import today
from .base import BaseForm, MultiCheckboxField, choices, code_choices, port_choices


class FeeItemForm(BaseForm):
    """The fields of one fee item; validation is the shared item_fields cleaning, so the
    form and the file import can never disagree on what is valid."""

    fee_type = SelectField(_l("Fee type (catalog)"), validators=[InputRequired()])
    fee_code = StringField(_l("Your fee code"), validators=[Optional(), Length(max=64)],
                           description=_l("Optional: your own code for this fee; imports use it to find the item."))
    name_zh = StringField(_l("Fee name (Chinese)"), validators=[Length(max=200)])
    name_en = StringField(_l("Fee name (English)"), validators=[Optional(), Length(max=200)])
    unit = SelectField(_l("Unit"))
    container_size = SelectField(_l("Container size"), validators=[Optional()])
    cargo_scope = SelectField(_l("Cargo scope"), validators=[Optional()])
    trade = SelectField(_l("Trade"), validators=[Optional()])
    direction = SelectField(_l("Direction"), validators=[Optional()])
    amount = StringField(_l("Amount"), validators=[InputRequired()])
    currency = SelectField(_l("Currency"))
    tax_included = BooleanField(_l("Tax included"), default=True)
    tax_rate = StringField(_l("Tax rate (%)"), validators=[Optional()])
    tiers = StringField(_l("Day bands"), validators=[Optional(), Length(max=400)],
                        description=_l("For per-day fees: free:7;8-14:85;15-21:170;22-:340"))
    pricing_basis = SelectField(_l("Pricing basis"))
    service_content = TextAreaField(_l("Service content"), validators=[Optional(), Length(max=4000)])
    legal_basis = TextAreaField(_l("Legal basis"), validators=[Optional(), Length(max=2000)])
    ports = MultiCheckboxField(_l("Ports"), validators=[Optional()])
    lock_version = HiddenField()

    effective_from = DateField(_l("Effective from"), validators=[Optional()])
    reason = StringField(_l("Reason for the change"), validators=[Optional(), Length(max=500)])
    save = SubmitField(_l("Save draft"))
    publish = SubmitField(_l("Save and publish"))

    def __init__(self, catalog, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        self.cleaned: dict = {}
        self.fee_type.choices = choices(
            (ft.code, f"{ft.code} · {ft.display_name(lang)}") for ft in catalog.types.values())
        # Empty means "the fee type's own" (item_fields fills it in): a publisher who only picks
        # the fee type must not silently publish the first unit or pricing basis of the list.
        as_catalog = choices([("", _l("as in the fee catalog"))])
        self.unit.choices = as_catalog + code_choices(codes.UNITS, lang)
        self.container_size.choices = code_choices(codes.CONTAINER_SIZES, lang, any_label=True)
        self.cargo_scope.choices = code_choices(codes.CARGO_SCOPES, lang, any_label=True)
        self.trade.choices = code_choices(codes.TRADES, lang, any_label=True)
        self.direction.choices = code_choices(codes.DIRECTIONS, lang, any_label=True)
        self.currency.choices = code_choices(codes.CURRENCIES, lang)
        self.pricing_basis.choices = as_catalog + code_choices(codes.PRICING_BASES, lang)
        self.ports.choices = port_choices(lang)
        if self.effective_from.data is None:
            self.effective_from.data = today()

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        raw = {name: getattr(self, name).data for name in (
            "fee_type", "fee_code", "name_zh", "name_en", "unit", "container_size", "cargo_scope",
            "trade", "direction", "amount", "currency", "tiers", "pricing_basis", "service_content",
            "legal_basis", "ports", "tax_rate")}
        raw["tax_included"] = "yes" if self.tax_included.data else "no"
        self.cleaned, problems = clean_item_values(raw, self.catalog)
        for problem in problems:
            field = getattr(self, problem.field, None) or self.fee_type
            if str(problem.message) not in [str(e) for e in field.errors]:
                field.errors = list(field.errors) + [problem.message]
            ok = False
        if self.publish.data and not self.effective_from.data:
            self.effective_from.errors = list(self.effective_from.errors) + [_l("is required")]
            ok = False
        return ok

    def fill_from(self, item) -> None:
        for name in ("fee_code", "name_zh", "name_en", "unit", "container_size", "cargo_scope", "trade",
                     "direction", "currency", "tiers", "pricing_basis", "service_content", "legal_basis"):
            getattr(self, name).data = getattr(item, name)
        self.fee_type.data = item.fee_type_code
        self.amount.data = f"{item.amount}"
        self.tax_included.data = item.tax_included
        self.tax_rate.data = f"{item.tax_rate}" if item.tax_rate is not None else ""
        self.ports.data = codes.split_list(item.ports)
        self.lock_version.data = str(item.lock_version)


class ItemActionForm(BaseForm):
    """Publish, withdraw or discard a draft: an effective date and a reason."""

    effective_from = DateField(_l("Effective from"), validators=[InputRequired()])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=500)])
    lock_version = IntegerField(validators=[InputRequired()])
    submit = SubmitField(_l("Confirm"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.effective_from.data is None:
            self.effective_from.data = today()


class ImportUploadForm(BaseForm):
    file = FileField(_l("CSV or XLSX file"), validators=[
        FileRequired(), FileAllowed(["csv", "xlsx", "txt"], _l("Upload a .csv or .xlsx file."))])
    effective_from = DateField(_l("Effective from (for rows without a date)"), validators=[Optional()])
    submit = SubmitField(_l("Check the file"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.effective_from.data is None:
            self.effective_from.data = today()


class ImportConfirmForm(BaseForm):
    token = HiddenField(validators=[InputRequired()])
    fingerprint = HiddenField(validators=[InputRequired()])
    effective_from = HiddenField()
    reason = StringField(_l("Reason for the change"), validators=[Optional(), Length(max=500)])
    confirm = SubmitField(_l("Publish these changes"))
    discard = SubmitField(_l("Discard"))
