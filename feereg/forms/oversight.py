"""The regulator's forms: a decision on a flag, a policy notice, complaint and compliance steps,
the audit report's filter; and the firm's answers."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from .. import codes
from ..labels import audit_label
from ..models import POLICY_KINDS
from .base import BaseForm, GetForm, choices, code_choices

POLICY_KIND_LABELS = {"abolish": _l("Abolished"), "merge": _l("Merged into another fee"),
                      "cap": _l("Cap (maximum amount)"), "official_rate": _l("Official rate (pass-through)")}


class FlagDecisionForm(BaseForm):
    decision = RadioField(_l("Decision"), validators=[InputRequired()],
                          choices=choices([("confirm", _l("Confirm: an irregularity")),
                                           ("dismiss", _l("Dismiss: not an irregularity"))]))
    note = TextAreaField(_l("Note"), validators=[InputRequired(), Length(max=4000)],
                         description=_l("Why: it is kept with the decision and shown to the firm when confirmed."))


class AnswerForm(BaseForm):
    """A firm's answer to a confirmed flag or a forwarded complaint."""
    answer = TextAreaField(_l("Your answer"), validators=[InputRequired(), Length(max=4000)])


class PolicyNoticeForm(BaseForm):
    kind = SelectField(_l("What the notice does"), validators=[InputRequired()])
    fee_type_code = SelectField(_l("Fee type"), validators=[InputRequired()])
    amount = StringField(_l("Amount (cap or official rate)"), validators=[Optional(), Length(max=20)])
    currency = SelectField(_l("Currency"), default="CNY")
    replaced_by = SelectField(_l("Merged into"), validators=[Optional()])
    unit = SelectField(_l("Only for unit"), validators=[Optional()])
    container_size = SelectField(_l("Only for container size"), validators=[Optional()])
    port = SelectField(_l("Only at port"), validators=[Optional()])
    effective_from = DateField(_l("Effective from"), validators=[InputRequired()])
    reference = StringField(_l("Reference (document number)"), validators=[Optional(), Length(max=200)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])

    def __init__(self, fee_types, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = choices((k, POLICY_KIND_LABELS[k]) for k in POLICY_KINDS)
        types = [(ft.code, f"{ft.code} · {ft.display_name(lang)}") for ft in fee_types]
        self.fee_type_code.choices = choices(types)
        self.replaced_by.choices = choices([("", "—")] + types)
        self.currency.choices = code_choices(codes.CURRENCIES, lang)
        self.unit.choices = code_choices(codes.UNITS, lang, any_label=True)
        self.container_size.choices = code_choices(codes.CONTAINER_SIZES, lang, any_label=True)
        self.port.choices = code_choices(codes.PORTS, lang, any_label=True)

    @property
    def values(self) -> dict:
        return {name: getattr(self, name).data for name in (
            "kind", "fee_type_code", "amount", "currency", "replaced_by", "unit", "container_size", "port",
            "effective_from", "reference", "note")}


class StepForm(BaseForm):
    """One step of a complaint or a compliance case: which step, its text, a deadline."""
    step = HiddenField(validators=[InputRequired()])
    text = TextAreaField(_l("Note"), validators=[Optional(), Length(max=4000)])
    deadline = DateField(_l("Deadline"), validators=[Optional()])


class ReportForm(GetForm):
    date_from = DateField(_l("Raised from"), validators=[Optional()])
    date_to = DateField(_l("Raised until"), validators=[Optional()])
    category = SelectField(_l("Firm category"), validators=[Optional()])
    firm = StringField(_l("Firm (credit code)"), validators=[Optional(), Length(max=40)])
    rule = SelectField(_l("Rule"), validators=[Optional()])
    status = SelectField(_l("Status"), validators=[Optional()])

    def __init__(self, rules, lang: str, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.category.choices = code_choices(codes.CATEGORIES, lang, any_label=True)
        self.rule.choices = choices([("", codes.ANY.label(lang))] + [
            (r, f"{r} · {audit_label('rule', r)}") for r in rules])
        self.status.choices = choices([("", codes.ANY.label(lang))] + [
            (s, audit_label("flag_status", s)) for s in ("open", "confirmed", "dismissed", "resolved")])
