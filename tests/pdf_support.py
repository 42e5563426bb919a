"""What the PDF tests need: WeasyPrint (with Pango), a CJK font, pypdf.

`make` installs all of them (Makefile SYSTEM_PACKAGES, setup.cfg). Where one is missing
the PDF tests skip with the reason in the summary; with CI=true they fail instead, as
the PostgreSQL tests do, so CI can never pass without really rendering a PDF.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys

import pytest

from .conftest import IN_CI


def _problem() -> str | None:
    try:
        import pypdf  # noqa: F401
        import weasyprint  # noqa: F401  (loads Pango through cffi: fails without it)
    except (ImportError, OSError) as exc:
        return f"WeasyPrint or pypdf cannot be loaded: {exc}"
    if shutil.which("fc-list"):
        fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
        if not fonts.strip():
            return "no CJK font installed (apt-get install fonts-wqy-microhei)"
    return None


PROBLEM = _problem()


def require_pdf() -> None:
    if PROBLEM is None:
        return
    if IN_CI:
        pytest.fail(f"PDF rendering is required in CI: {PROBLEM}")
    print(f"\nSKIPPING PDF tests: {PROBLEM}", file=sys.stderr)
    pytest.skip(f"PDF rendering unavailable: {PROBLEM}")


def pdf_text(body: bytes) -> tuple[int, list[str]]:
    """(page count, each page's text)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(body))
    return len(reader.pages), [page.extract_text() for page in reader.pages]
