"""Language choice: Chinese by default, English one click away (kept in the session)."""
from __future__ import annotations

from pathlib import Path

from flask import current_app, has_request_context, request, session
from flask_babel import get_locale


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
