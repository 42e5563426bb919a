"""The long work that runs as jobs (services/jobs.py), one function per kind.

Each takes the job's context, reads its parameters, reports progress and returns the
result to keep. Writes go through the job's session and commit with its final state, so
a failed or dead job leaves nothing half-written.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from datetime import date

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..exports import pdf
from ..models import FeeItem, Firm, Flag
from . import audit_report, bulk_download, checks, imports
from .errors import ServiceError
from .jobs import N_, register_kind
from .oversight import FlagFilter
from .registry import today

#: What a big import's preview keeps to show: its first errors and changed rows.
PREVIEW_SHOWN = 500
#: Flags laid out per part of a long report PDF (one progress step each).
REPORT_PART_ROWS = 500


class JobRefused(ServiceError):
    """A job that cannot do what it was asked, for a reason its owner can act on."""


# --- the full anomaly scan --------------------------------------------------------------------

def run_scan(ctx) -> dict:
    total = ctx.session.scalar(select(func.count()).select_from(FeeItem)) or 0
    done = 0
    checking = N_("Checking fee items: %(done)s of %(total)s")
    ctx.progress(0, total, checking, {"done": "0", "total": f"{total:,}"}, force=True)

    def step(count: int) -> None:
        nonlocal done
        done += count
        ctx.progress(done, total, checking, {"done": f"{done:,}", "total": f"{total:,}"})

    report = checks.full_scan(ctx.session, ctx.owner, progress=step)
    ctx.progress(total, total, N_("Saving the flags"), force=True)
    return {"items": report.items, "live": report.live, "raised": report.raised, "reopened": report.reopened,
            "resolved": report.resolved, "found": dict(report.found), "seconds": round(report.seconds, 1)}


# --- a big import: the check, then the publish ------------------------------------------------

def _pending(ctx):
    pending = imports.get_pending(ctx.session, ctx.params["token"], ctx.owner) if ctx.owner else None
    if pending is None:
        raise JobRefused(_("This upload was already imported or discarded."))
    return pending


def _checked_preview(ctx, pending):
    def step(checked: int, rows: int) -> None:
        ctx.progress(checked, rows, N_("Checking rows: %(done)s of %(total)s"),
                     {"done": f"{checked:,}", "total": f"{rows:,}"})

    ctx.progress(message=N_("Reading the file"), force=True)
    preview = imports.preview_pending(ctx.session, pending, ctx.owner, ctx.params.get("effective_from"), progress=step)
    ctx.progress(len(preview.rows), len(preview.rows), N_("Checked"), force=True)
    return preview


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def run_import_preview(ctx) -> dict:
    """Check a big upload; keep what its preview page shows (not every row of the file)."""
    pending = _pending(ctx)
    preview = _checked_preview(ctx, pending)
    changes = [r for r in preview.rows if r.status in ("new", "changed")]
    return {
        "filename": pending.filename, "token": pending.token, "kind": preview.kind, "ok": preview.ok,
        "effective_from": ctx.params.get("effective_from") or "", "fingerprint": preview.fingerprint(),
        "counts": preview.counts, "rows": len(preview.rows), "notes": [str(note) for note in preview.notes],
        "error_count": len(preview.errors),
        "errors": [[e.row, e.column, str(e.message)] for e in preview.errors[:PREVIEW_SHOWN]],
        "change_count": len(changes),
        "changes": [{"row": r.row, "status": r.status, "name_zh": _shown(r.values.get("name_zh")),
                     "fee_type": _shown(r.values.get("fee_type_code")), "amount": _shown(r.values.get("amount")),
                     "currency": _shown(r.values.get("currency")),
                     "effective_from": r.effective_from.isoformat() if r.effective_from else "",
                     "diff": [[k, _shown(old), _shown(new)] for k, (old, new) in r.diff.items()]}
                    for r in changes[:PREVIEW_SHOWN]],
    }


def run_import_apply(ctx) -> dict:
    """Check the upload again against the registry as it is now, and publish it all in the
    job's one transaction: every change, or (on any error, or the job dying) none."""
    pending = _pending(ctx)
    preview = _checked_preview(ctx, pending)
    if preview.fingerprint() != ctx.params.get("fingerprint"):
        raise JobRefused(_("Your schedule changed since this preview; check the new preview before publishing."))
    if not preview.ok:
        raise JobRefused(_("The file has errors; nothing was imported."))
    changes = preview.count("new") + preview.count("changed")
    ctx.progress(message=N_("Publishing %(n)s changes"), args={"n": f"{changes:,}"}, force=True)
    counts = imports.apply_preview(ctx.session, preview, ctx.owner, ctx.params.get("reason") or "")
    imports.finish_pending(pending, "applied")
    return counts


# --- a long audit report PDF ------------------------------------------------------------------

def report_params(f: FlagFilter, lang: str) -> dict:
    """A report filter as a job's parameters (JSON)."""
    values = asdict(f)
    for name in ("date_from", "date_to"):
        values[name] = values[name].isoformat() if values[name] else None
    return {"filter": values, "lang": lang}


def _report_filter(params: dict) -> FlagFilter:
    values = dict(params["filter"])
    for name in ("date_from", "date_to"):
        values[name] = date.fromisoformat(values[name]) if values.get(name) else None
    known = {f.name for f in fields(FlagFilter)}
    return FlagFilter(**{k: v for k, v in values.items() if k in known})


def run_report_pdf(ctx) -> dict:
    """The audit report as PDF, laid out REPORT_PART_ROWS flags at a time. The flags' order
    is fixed first (their ids), so flags raised meanwhile neither repeat nor shift a part."""
    from flask import current_app

    f = _report_filter(ctx.params)
    limit = current_app.config["REPORT_PDF_MAX_ROWS"]
    ids = list(ctx.session.scalars(audit_report.report_query(f).with_only_columns(Flag.id).limit(limit + 1)))
    truncated = len(ids) > limit
    ids = ids[:limit]
    total = len(ids)
    summary = audit_report.summary(ctx.session, f)
    firm = ctx.session.get(Firm, f.firm_id) if f.firm_id else None
    as_of = today()
    laying_out = N_("Laying out flags: %(done)s of %(total)s")
    ctx.progress(0, total, laying_out, {"done": "0", "total": f"{total:,}"}, force=True)

    def load(chunk: list[int]) -> list[Flag]:
        by_id = {flag.id: flag for flag in ctx.session.scalars(audit_report.report_query(FlagFilter(status=""))
                                                                .where(Flag.id.in_(chunk)))}
        return [by_id[i] for i in chunk if i in by_id]

    def parts():
        first = ids[:REPORT_PART_ROWS]
        yield "print/report.html", dict(f=f, firm=firm, flags=load(first), truncated=truncated, as_of=as_of,
                                        summary=summary, listed=total)
        for start in range(REPORT_PART_ROWS, total, REPORT_PART_ROWS):
            ctx.session.expunge_all()  # the laid-out pages are kept, not the rows behind them
            yield "print/report_rows.html", dict(flags=load(ids[start:start + REPORT_PART_ROWS]))

    def laid_out(parts_done: int) -> None:
        done = min(total, parts_done * REPORT_PART_ROWS)
        ctx.progress(done, total, laying_out, {"done": f"{done:,}", "total": f"{total:,}"})

    body = pdf.render_pdf_parts(parts(), laid_out)
    ctx.progress(total, total, N_("Writing the PDF"), force=True)
    name = ctx.save_file(f"feereg-audit-{as_of.isoformat()}.pdf", body)
    return {"file": name, "mimetype": pdf.PDF_MIMETYPE, "rows": total, "truncated": truncated, "bytes": len(body)}


# --- where a finished job's result is ---------------------------------------------------------

def _download(job):
    return url_for("jobs.download", job_id=job.id), N_("Download the PDF")


register_kind("scan", run_scan, audience="regulator", thread_name="feereg-job-scan",
              title=N_("Full anomaly scan"),
              result_link=lambda job: (url_for("regulator.flags"), N_("See the flags")))
register_kind("import.preview", run_import_preview, thread_name="feereg-job-import",
              title=N_("Checking an import file"),
              result_link=lambda job: (url_for("jobs.import_preview", job_id=job.id), N_("Review the preview")))
register_kind("import.apply", run_import_apply, thread_name="feereg-job-import",
              title=N_("Publishing an import file"),
              result_link=lambda job: (url_for("publisher.schedule"), N_("See your schedule")))
register_kind("bulk", bulk_download.build_job, audience="regulator", thread_name="feereg-bulk-download",
              title=N_("Regenerating the bulk download"),
              result_link=lambda job: (url_for("public.open_data"), N_("Open the bulk download")))
register_kind("report.pdf", run_report_pdf, audience="regulator", thread_name="feereg-job-pdf",
              title=N_("Audit report PDF"), result_link=_download)
