"""Labels of the audit vocabulary (flag, complaint and case statuses, rules, severities,
invoice marks) in the reader's language; templates get them as `audit_label(kind, code)`."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

LABELS = {
    "flag_status": {"open": _l("open"), "confirmed": _l("confirmed"), "dismissed": _l("dismissed"),
                    "resolved": _l("resolved")},
    "severity": {"high": _l("high"), "medium": _l("medium"), "low": _l("low")},
    "complaint_status": {"received": _l("received"), "forwarded": _l("forwarded to the firm"),
                         "answered": _l("answered by the firm"), "closed": _l("closed")},
    "complaint_step": {"forward": _l("Forward to the firm"), "answer": _l("Answer"), "close": _l("Conclude and close")},
    "case_status": {"warning": _l("warning"), "rectification": _l("rectification"), "closed": _l("closed")},
    "rule": {"ABOLISHED": _l("Abolished fee charged"), "OVER_CAP": _l("Above the cap"),
             "MARKUP": _l("Mark-up on a pass-through fee"), "PEER_OUTLIER": _l("Far above peers"),
             "NO_NOTICE": _l("Rise without notice"), "STEEP_RISE": _l("Steep rise"),
             "DUPLICATE": _l("Duplicate fee"), "MISPLACED": _l("Fee outside the firm's category"),
             "UNDISCLOSED": _l("Undisclosed charge"), "INCOMPLETE": _l("Incomplete disclosure")},
    "mark": {"as_published": _l("as published"), "above": _l("above the published amount"),
             "not_in_schedule": _l("not in the schedule"), "abolished": _l("abolished"),
             "over_cap": _l("over a cap"), "charged_twice": _l("charged twice"), "invalid": _l("cannot be checked")},
    "policy_kind": {"abolish": _l("Abolished"), "merge": _l("Merged into another fee"),
                    "cap": _l("Cap (maximum amount)"), "official_rate": _l("Official rate (pass-through)")},
    "score_part": {"completeness": _l("Completeness"), "currency": _l("Currency after policy notices"),
                   "flags": _l("Confirmed irregularities")},
}


def audit_label(kind: str, code: str | None) -> str:
    label = LABELS.get(kind, {}).get(code or "")
    return str(label) if label is not None else (code or "")
