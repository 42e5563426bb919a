from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectMultipleField, widgets

from .. import codes


class BaseForm(FlaskForm):
    """CSRF on; subclasses add fields."""


class GetForm(FlaskForm):
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
