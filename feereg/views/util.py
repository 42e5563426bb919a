"""Small helpers shared by the views."""
from __future__ import annotations

from datetime import date

from dataclasses import dataclass
from typing import Any, Callable

from flask import abort, current_app, flash, request

from ..extensions import db
from ..services.errors import ServiceError
from ..services.registry import today
from flask_babel import gettext as _


def page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 100_000))
    except ValueError:
        return 1


def date_arg(name: str = "on") -> date | None:
    """A ?on=YYYY-MM-DD argument; a malformed one is a 400, not a silent 'today'."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        abort(400, description=_("“%(value)s” is not a date; write dates as YYYY-MM-DD, e.g. 2025-06-30.", value=raw[:40]))


@dataclass
class Outcome:
    ok: bool
    value: Any = None


def run_service(action: Callable[[], Any]) -> Outcome:
    """Run one service action as the request's one transaction: commit it, or roll it back
    and show the person the service's reason for refusing."""
    try:
        value = action()
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return Outcome(False)
    db.session.commit()
    return Outcome(True, value)


def result_key(lang: str) -> tuple:
    """What a page's kept result (services.result_cache) depends on besides the registry:
    the route and its every argument, the language, the day (fees in force "today"), and
    the configured exchange rates."""
    # Sorted by name only: a repeated argument's values keep their order (the first counts).
    return (request.endpoint, request.script_root, lang, tuple(sorted((request.view_args or {}).items())),
            tuple(sorted(request.args.items(multi=True), key=lambda pair: pair[0])), today(),
            repr(current_app.config["EXCHANGE_RATES"]))
