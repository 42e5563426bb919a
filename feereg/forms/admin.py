from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Optional

from .base import BaseForm, choices


class FirmStatusForm(BaseForm):
    status = SelectField(_l("Status"), choices=choices([("active", _l("active")), ("suspended", _l("suspended"))]))
    reason = StringField(_l("Reason (shown on the firm's pages)"), validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Save"))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.status.data == "suspended" and not (self.reason.data or "").strip():
            self.reason.errors = list(self.reason.errors) + [_l("Give the reason for the suspension.")]
            ok = False
        return ok


class UserActiveForm(BaseForm):
    action = SelectField(choices=choices([("disable", _l("Disable")), ("enable", _l("Enable"))]), validators=[InputRequired()])
    submit = SubmitField(_l("Save"))
