"""Language choice: Chinese by default, English one click away (kept in the session)."""
from __future__ import annotations

from pathlib import Path

import flask_babel
from flask import current_app, has_request_context, request, session
from flask_babel import get_locale, get_translations


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI and background work speak the default language
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = request.args.get("lang") or session.get("lang")
    if chosen in languages:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale else "zh"


def translations():
    """flask_babel's get_translations(), remembered while the locale is the same object (a
    request's, or one force_locale sets and then restores). A template asks for it on every
    `_()`, 40–300 times a page, and flask_babel's own lookup walks `g` three times each."""
    # flask_babel's per-`g` namespace (a private function: without it, no remembering). The
    # translation domain is taken as flask_babel's default one: feereg never sets another.
    current_context = getattr(flask_babel, "_get_current_context", None)
    context = current_context() if current_context is not None else None
    if context is None:
        return get_translations()
    locale = getattr(context, "babel_locale", None)
    kept = getattr(context, "feereg_translations", None)
    if kept is not None and locale is not None and kept[0] is locale:
        return kept[1]
    found = get_translations()  # sets babel_locale when not yet chosen
    context.feereg_translations = (getattr(context, "babel_locale", None), found)
    return found


def install_template_gettext(app) -> None:
    """Templates' `_()` and friends through `translations()` (as flask_babel installs them)."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )


TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"


def compile_catalogs(force: bool = False) -> list[str]:
    """Compile each .po message catalog to the .mo that gettext reads, when out of date."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for po_path in sorted(TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with open(po_path, "rb") as fh:
            catalog = read_po(fh)
        with open(mo_path, "wb") as fh:
            write_mo(fh, catalog)
        compiled.append(str(po_path.parent.parent.name))
    return compiled
