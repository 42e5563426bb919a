"""Shippers' forms: comparing one fee type across firms, and describing a shipment to quote.
Both are GET forms that change nothing (no CSRF token; the URL can be shared)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, IntegerField, RadioField, SelectField
from wtforms.validators import InputRequired, NumberRange, Optional

from .. import codes
from ..services.quote_rules import SERVICES, SIZES, Shipment
from .base import GetForm, MultiCheckboxField, choices, code_choices

#: The cargo-scope filter: "" shows every item, "general" only items without a special scope.
GENERAL = "general"


def _scope_choices(lang: str, with_all: bool):
    pairs = [(GENERAL, _l("General cargo"))] + [(c.code, c.label(lang)) for c in codes.CARGO_SCOPES.values()]
    if with_all:
        pairs.insert(0, ("", _l("All items")))
    return choices(pairs)


class CompareForm(GetForm):
    """The narrowing of a comparison; every field optional."""

    unit = SelectField(_l("Unit"), validators=[Optional()])
    size = SelectField(_l("Container size"), validators=[Optional()])
    cargo_scope = SelectField(_l("Cargo"), validators=[Optional()])
    port = SelectField(_l("Port"), validators=[Optional()])
    category = SelectField(_l("Firm category"), validators=[Optional()])
    on = DateField(_l("As of"), validators=[Optional()],
                   description=_l("Leave empty for today's fees."))

    def __init__(self, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unit.choices = code_choices(codes.UNITS, lang, any_label=True)
        self.size.choices = code_choices(codes.CONTAINER_SIZES, lang, any_label=True)
        self.cargo_scope.choices = _scope_choices(lang, with_all=True)
        self.port.choices = code_choices(codes.PORTS, lang, any_label=True)
        self.category.choices = code_choices(codes.CATEGORIES, lang, any_label=True)

    def filters(self) -> dict:
        """The service's keyword arguments (None where not narrowed)."""
        scope = self.cargo_scope.data or None
        return {
            "unit": self.unit.data or None,
            "size": self.size.data or None,
            "cargo_scope": "" if scope == GENERAL else scope,
            "port": self.port.data or None,
            "category": self.category.data or None,
            "on": self.on.data,
        }


class PickFeeTypeForm(GetForm):
    fee_type = SelectField(_l("Fee type"), validators=[InputRequired()])

    def __init__(self, fee_types, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fee_type.choices = choices((ft.code, f"{ft.code} · {ft.display_name(lang)}") for ft in fee_types)


def _count(label):
    return IntegerField(label, default=0, validators=[Optional(), NumberRange(min=0, max=999)])


class ShipmentForm(GetForm):
    port = SelectField(_l("Port"), validators=[InputRequired()])
    direction = RadioField(_l("Direction"), validators=[InputRequired()], default="export")
    count_20 = _count(_l("20' containers"))
    count_40 = _count(_l("40' containers"))
    count_40HQ = _count(_l("40' high cube containers"))
    count_45 = _count(_l("45' containers"))
    bills = IntegerField(_l("Bills of lading"), default=1, validators=[InputRequired(), NumberRange(min=1, max=99)])
    storage_days = IntegerField(_l("Days kept at a yard"), default=0,
                                validators=[Optional(), NumberRange(min=0, max=365)],
                                description=_l("Days the containers stay at the yard or terminal before "
                                               "loading or after discharge."))
    cargo_scope = SelectField(_l("Cargo"), validators=[Optional()], default=GENERAL)
    services = MultiCheckboxField(_l("Services wanted"), validators=[Optional()])
    on = DateField(_l("Fees as published on"), validators=[Optional()],
                   description=_l("Leave empty for today's fees."))

    def __init__(self, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Container shipments pass sea ports and land border ports, not the airport.
        self.port.choices = code_choices({**codes.SEA_PORTS, **codes.LAND_PORTS}, lang)
        self.direction.choices = code_choices(codes.DIRECTIONS, lang)
        self.cargo_scope.choices = _scope_choices(lang, with_all=False)
        self.services.choices = choices((code, label) for code, label in SERVICES.items())

    def count_fields(self):
        return [getattr(self, f"count_{size}") for size in SIZES]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        counts = self.count_fields()
        if not any(f.errors for f in counts) and not any((f.data or 0) > 0 for f in counts):
            # Shown under the first count, where a shipper starts filling them in.
            counts[0].errors = [*counts[0].errors, _l("Give at least one container.")]
            return False
        return valid

    def shipment(self) -> Shipment:
        scope = self.cargo_scope.data or GENERAL
        return Shipment(
            port=self.port.data,
            direction=self.direction.data,
            containers={size: f.data or 0 for size, f in zip(SIZES, self.count_fields())},
            bills=self.bills.data,
            storage_days=self.storage_days.data or 0,
            services=frozenset(self.services.data or ()),
            cargo_scope="" if scope == GENERAL else scope,
        )
