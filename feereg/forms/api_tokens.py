"""A regulator's API tokens: naming a new one, revoking one (a button: only the CSRF token)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import InputRequired, Length

from ..services.api_tokens import MAX_NAME
from .base import BaseForm


class NewTokenForm(BaseForm):
    name = StringField(_l("Name"), validators=[InputRequired(), Length(max=MAX_NAME)],
                       description=_l("What will use it, e.g. “weekly audit script”: so you know which to revoke."))


class RevokeTokenForm(BaseForm):
    """No fields: the token is in the address, the CSRF token proves the page sent it."""
