from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import Email, EqualTo, InputRequired, Length, Optional, ValidationError

from .. import codes, credit_code
from ..services import passwords
from .base import BaseForm, MultiCheckboxField, code_choices, port_choices


class LoginForm(BaseForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired(), Length(max=200)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


class RegisterFirmForm(BaseForm):
    credit_code = StringField(_l("Unified social credit code"), validators=[InputRequired(), Length(max=40)],
                              description=_l("18 characters, as on the business licence"))
    name_zh = StringField(_l("Firm name (Chinese)"), validators=[InputRequired(), Length(max=200)])
    name_en = StringField(_l("Firm name (English)"), validators=[Optional(), Length(max=200)])
    category = SelectField(_l("Category"), validators=[InputRequired()])
    ports = MultiCheckboxField(_l("Ports served"), validators=[InputRequired(message=_l("Choose at least one port."))])
    contact_phone = StringField(_l("Contact phone"), validators=[Optional(), Length(max=64)])
    contact_email = EmailField(_l("Contact e-mail"), validators=[Optional(), Email(), Length(max=200)])
    name = StringField(_l("Your name"), validators=[InputRequired(), Length(max=100)])
    email = EmailField(_l("Your e-mail (login)"), validators=[InputRequired(), Email(), Length(max=200)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    password_again = PasswordField(_l("Password again"), validators=[
        InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})

    def __init__(self, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.description = policy_help()
        self.category.choices = code_choices(codes.CATEGORIES, lang)
        self.ports.choices = port_choices(lang)

    def validate_credit_code(self, field):
        try:
            field.data = credit_code.validate(field.data)
        except credit_code.InvalidCreditCode as exc:
            raise ValidationError(_l("Invalid credit code: %(reason)s", reason=str(exc))) from None

    def validate_password(self, field):
        problems = passwords.problems(field.data or "", self.email.data or "", self.name.data or "")
        if problems:
            raise ValidationError(" ".join(str(p) for p in problems))


class PasswordForm(BaseForm):
    """A person's own password change; the policy is checked by the service, which knows the
    account's e-mail and name."""
    current = PasswordField(_l("Current password"), validators=[InputRequired(), Length(max=200)],
                            render_kw={"autocomplete": "current-password"})
    password = PasswordField(_l("New password"), validators=[InputRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    password_again = PasswordField(_l("New password again"), validators=[
        InputRequired(), EqualTo("password", message=_l("The two passwords differ."))],
        render_kw={"autocomplete": "new-password"})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.password.description = policy_help()


def policy_help():
    return _l("At least %(n)s characters, letters mixed with digits or symbols; not a common password, "
              "your e-mail name or this site's name.", n=current_app.config.get("PASSWORD_MIN_LENGTH", 10))
