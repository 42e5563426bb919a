from __future__ import annotations

import re
from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (DateField, DateTimeField, FileField, SelectChoice, SelectMultipleField, StringField,
                     ValidationError, widgets)

from .. import codes


#: C0 controls but tab and line breaks, and DEL: nothing a person types; PostgreSQL refuses a
#: NUL in any text outright (a database error, not a field error, if it got that far).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Dates a form accepts: the services add days to them (date.max + 1 day overflows).
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2999, 12, 31)


class NoControlCharacters:
    """Text (or an uploaded file's name) without control characters."""

    def __call__(self, form, field):
        value = getattr(field.data, "filename", field.data)
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValidationError(_l("contains control characters"))


class PlausibleDate:
    def __call__(self, form, field):
        if isinstance(field.data, date) and not FIRST_DATE <= field.data <= LAST_DATE:
            raise ValidationError(_l("must be between %(first)s and %(last)s",
                                     first=FIRST_DATE.isoformat(), last=LAST_DATE.isoformat()))


def _implied_validators(field_class) -> list:
    if issubclass(field_class, (StringField, FileField)):
        return [NoControlCharacters()]
    if issubclass(field_class, (DateField, DateTimeField)):
        return [PlausibleDate()]
    return []


class _CheckedForm(FlaskForm):
    """Every form's text, file and date fields get the checks above besides their own, so
    no form can forget them."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            extra = _implied_validators(unbound_field.field_class)
            if extra:
                options = dict(options, validators=[*(unbound_field.kwargs.get("validators") or ()), *extra])
            return unbound_field.bind(form=form, **options)


class BaseForm(_CheckedForm):
    """CSRF on; subclasses add fields."""


class GetForm(_CheckedForm):
    """A search or filter form sent by GET: no CSRF token, nothing changes."""

    class Meta:
        csrf = False


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def code_choices(table: dict, lang: str, any_label: bool = False) -> list[SelectChoice]:
    pairs = [(c.code, c.label(lang)) for c in table.values()]
    if any_label:
        pairs.insert(0, ("", codes.ANY.label(lang)))
    return choices(pairs)


def port_choices(lang: str) -> list[SelectChoice]:
    return choices((p.code, p.label(lang)) for p in codes.PORTS.values())


REQUIRED = _l("is required")
