"""The search form: sent by GET, so results can be linked and bookmarked; no CSRF."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import Optional

from .base import GetForm, choices


class SearchForm(GetForm):
    # No length validator: an over-long query gets the search's own message, not a field error.
    q = StringField(_l("Search fees"), validators=[Optional()])
    sort = SelectField(_l("Sort by"), default="relevance", validators=[Optional()], validate_choice=False,
                       choices=choices([("relevance", _l("Best match")), ("amount", _l("Amount, lowest first")),
                                        ("amount_desc", _l("Amount, highest first"))]))
