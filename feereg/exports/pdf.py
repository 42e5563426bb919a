"""Print-quality PDFs (A4) of a schedule, a comparison, a quote and the audit report.

WeasyPrint renders templates/print/*.html. Three things keep it fast and correct:

- It never fetches the app over HTTP: the base URL is `file://` to static/ and the print
  stylesheet is parsed once per process (STYLE habit 11).
- static/print.css is written for layout speed (fixed table layout and column widths,
  separate borders, flat cells); see the benchmark in benchmarks/pdf_bench.py.
- WeasyPrint's user-agent stylesheet gives every element six pseudo-elements (`::marker`,
  `::footnote-call`, `::note-call`...), each cascaded and computed: a fifth of a 500-item
  schedule's render. The PDFs have no lists, footnotes or notes, so they render with that
  stylesheet minus those rules (_print_ua_stylesheet).
- A schedule is a pure function of the firm's hash chain, the language and the as-of
  date, so repeated downloads of an unchanged schedule are served from an on-disk cache
  keyed by those (PdfCache): no re-render until the firm publishes.

The page numbers ("page X of Y") live in a page-margin box; their words come from the
message catalog, so the margin-box rule is generated per language (page_label_css).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

from flask import current_app, render_template
from flask_babel import gettext as _

PDF_MIMETYPE = "application/pdf"
#: The project's top level (static/, templates/); not imported from feereg/__init__, which
#: nothing below the app factory imports.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = PROJECT_ROOT / "static"
PRINT_CSS = STATIC_DIR / "print.css"
#: The print templates: a change to any of them (or the stylesheet) invalidates cached PDFs.
PRINT_TEMPLATES = PROJECT_ROOT / "templates" / "print"
#: Cached schedules kept on disk before the oldest are removed.
CACHE_MAX_FILES = 2000


def render_pdf(template: str, **context) -> bytes:
    """Render one print template to PDF bytes (in the request's language)."""
    import weasyprint  # imported here: only PDF downloads pay for loading Pango

    context.setdefault("generated_at", datetime.now(timezone.utc).replace(microsecond=0))
    html = render_template(template, **context)
    document = _html_class()(string=html, base_url=STATIC_DIR.as_uri() + "/")
    return document.write_pdf(stylesheets=[_stylesheet(), _page_label_stylesheet(_("Page %(page)s of %(pages)s"))])


def render_pdf_parts(parts: Iterable[tuple[str, dict]], after_part: Callable[[int], None] | None = None) -> bytes:
    """One PDF laid out in parts: (template, context) pairs, each part starting a new page.

    For documents too long to lay out in one go within a job that shows its progress (a
    report of thousands of flags): `parts` may load its rows lazily, and `after_part(n)` is
    called as each part is laid out. Page numbers run on through the parts ("Page 7"); the
    total is left out, as it is known only once the last part is laid out.
    """
    generated_at = datetime.now(timezone.utc).replace(microsecond=0)
    documents, first_page = [], 1
    for template, context in parts:
        context.setdefault("generated_at", generated_at)
        html = render_template(template, **context)
        label = _page_label_stylesheet(_("Page %(page)s"), first_page)
        document = _html_class()(string=html, base_url=STATIC_DIR.as_uri() + "/").render(
            stylesheets=[_stylesheet(), label])
        documents.append(document)
        first_page += len(document.pages)
        if after_part:
            after_part(len(documents))
    pages = [page for document in documents for page in document.pages]
    return documents[0].copy(pages).write_pdf()


#: Rules of WeasyPrint's user-agent stylesheet that match every element through a bare
#: pseudo-element selector; narrowed to the elements that can use them (list items for markers;
#: nothing here is a footnote or a note).
_UA_UNIVERSAL_PSEUDO = re.compile(r"^::(marker|footnote-call|footnote-marker|note-call|note-marker|note-callback)\b.*$",
                                  re.MULTILINE)


@lru_cache(maxsize=1)
def _html_class():
    """weasyprint.HTML with the print user-agent stylesheet, or plain HTML if this WeasyPrint
    does not have the hook or the stylesheet where expected (slower, never wrong)."""
    import weasyprint

    sheet = _print_ua_stylesheet()
    if sheet is None or not hasattr(weasyprint.HTML, "_ua_stylesheets"):
        return weasyprint.HTML

    class PrintHTML(weasyprint.HTML):
        def _ua_stylesheets(self, forms=False):
            return [sheet] + super()._ua_stylesheets(forms)[1:]

    return PrintHTML


def _print_ua_stylesheet():
    import weasyprint

    path = Path(weasyprint.__file__).parent / "css" / "html5_ua.css"
    try:
        source = path.read_text(encoding="utf-8")
    except OSError:
        return None
    narrowed = _UA_UNIVERSAL_PSEUDO.sub(lambda m: "li" + m.group(0) if m.group(1) == "marker" else "", source)
    return weasyprint.CSS(string=narrowed, base_url=path.as_uri())


@lru_cache(maxsize=1)
def _stylesheet():
    import weasyprint

    return weasyprint.CSS(filename=str(PRINT_CSS))


@lru_cache(maxsize=64)
def _page_label_stylesheet(pattern: str, first_page: int = 1):
    import weasyprint

    css = page_label_css(pattern)
    if first_page != 1:  # a later part of render_pdf_parts: number on from the part before
        css += " @page:first { counter-set: page %d; }" % first_page
    return weasyprint.CSS(string=css)


def page_label_css(pattern: str) -> str:
    """The bottom-right margin box from a translated "Page %(page)s of %(pages)s".

    The placeholders become CSS counters and the words around them CSS strings, so
    Chinese reads 第 1 页，共 3 页 and English Page 1 of 3.
    """
    parts = []
    for piece in re.split(r"(%\(page\)s|%\(pages\)s)", pattern):
        if piece == "%(page)s":
            parts.append("counter(page)")
        elif piece == "%(pages)s":
            parts.append("counter(pages)")
        elif piece:
            parts.append('"' + piece.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "@page { @bottom-right { content: " + " ".join(parts) + "; } }"


# --- the schedule, cached by its hash chain -----------------------------------------------------


def schedule_cache_key(firm, as_of: date, lang: str) -> str:
    """Everything a schedule PDF depends on: the firm's chain head (any publish or withdrawal
    moves it), the as-of date (a pending change comes into force without a publish), the
    language, the firm's own name and status (printed, not in the chain) and the layout."""
    parts = (firm.credit_code, firm.chain_head or "", str(firm.chain_seq or 0), as_of.isoformat(), lang,
             firm.name_zh or "", firm.name_en or "", firm.status or "", layout_fingerprint())
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def layout_fingerprint() -> str:
    digest = hashlib.sha256(PRINT_CSS.read_bytes())
    for path in sorted(PRINT_TEMPLATES.glob("*.html")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


class PdfCache:
    """Rendered PDFs on disk, one file per key; written atomically so a reader never sees half
    a file, and pruned to the newest CACHE_MAX_FILES. Redis can replace it behind get/put."""

    def __init__(self, directory: str | os.PathLike, max_files: int = CACHE_MAX_FILES):
        self.directory = Path(directory)
        self.max_files = max_files

    @classmethod
    def from_config(cls) -> "PdfCache":
        return cls(current_app.config["PDF_CACHE_DIR"])

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pdf"

    def get(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, body: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._prune()

    def _prune(self) -> None:
        files = list(self.directory.glob("*.pdf"))
        if len(files) <= self.max_files:
            return
        files.sort(key=lambda p: p.stat().st_mtime)
        for old in files[: len(files) - self.max_files]:
            old.unlink(missing_ok=True)


def schedule_pdf(firm, as_of: date, lang: str, load_schedule, cache: PdfCache | None = None) -> bytes:
    """A firm's schedule as PDF, from the cache when the chain has not moved.

    `load_schedule()` returns the versions in force; it is called only on a cache miss, so a
    cached download costs no schedule query either.
    """
    cache = cache or PdfCache.from_config()
    key = schedule_cache_key(firm, as_of, lang)
    body = cache.get(key)
    if body is None:
        body = render_pdf("print/schedule.html", firm=firm, schedule=load_schedule(), as_of=as_of)
        cache.put(key, body)
    return body
