"""Long jobs' pages: the list, a job's progress (polled by static/jobs.js through its JSON
status), its result to download, cancelling; the regulator's full scan and bulk download
rebuild; the preview of a big import, whose check and publish run as jobs. A job is seen
only by its owner, and regulators' and system jobs also by every regulator and operator."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms import SubmitField

from ..extensions import db
from ..forms.base import BaseForm
from ..forms.publisher import ImportConfirmForm
from ..i18n import current_language
from ..models import Job
from ..services import bulk_download, imports, jobs
from ..services import job_kinds  # noqa: F401  (registers the kinds of long work)
from ..web import role_required
from .publisher import discard_upload

bp = Blueprint("jobs", __name__)

STATE_LABELS = {"queued": jobs.N_("Queued"), "running": jobs.N_("Running"), "done": jobs.N_("Done"),
                "failed": jobs.N_("Failed"), "cancelled": jobs.N_("Cancelled")}


class StartForm(BaseForm):
    submit = SubmitField()


class CancelForm(BaseForm):
    submit = SubmitField()


@bp.before_request
@login_required
def require_login():
    return None


def _visible(job_id: int) -> Job:
    """A job the current user may see; anyone else's is "not found", never "forbidden"."""
    job = db.session.get(Job, job_id)
    if job is None or not jobs.can_see(job, current_user):
        abort(404)
    return job


def describe(job: Job) -> dict:
    """What the page and its JSON status show of a job, in the reader's language."""
    kind = jobs.kind_of(job)
    link = kind.result_link(job) if kind and kind.result_link and job.state == "done" else None
    return {
        "id": job.id, "kind": job.kind, "title": _(kind.title) if kind and kind.title else job.kind,
        "state": job.state, "state_label": _(STATE_LABELS.get(job.state, job.state)), "finished": job.finished,
        "done": job.progress_done, "total": job.progress_total, "percent": job.percent,
        "count": f"{job.progress_done:,} / {job.progress_total:,}" if job.progress_total else "",
        "message": jobs.message_text(job), "error": job.error if job.state == "failed" else "",
        "result_url": link[0] if link else "", "result_label": _(link[1]) if link else "",
        "cancel_requested": bool(job.cancel_requested),
    }


@bp.get("/")
def index():
    rows = [(job, describe(job)) for job in jobs.visible_jobs(db.session, current_user)]
    regulator = current_user.role in ("regulator", "admin")
    return render_template("jobs/list.html", rows=rows, regulator=regulator, form=StartForm())


@bp.get("/<int:job_id>")
def show(job_id: int):
    job = _visible(job_id)
    jobs.nudge(current_app._get_current_object(), job)
    return render_template("jobs/job.html", job=job, info=describe(job), form=CancelForm())


@bp.get("/<int:job_id>.json")
def status(job_id: int):
    job = _visible(job_id)
    if not job.finished:
        jobs.nudge(current_app._get_current_object(), job)
    response = jsonify(describe(job))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<int:job_id>/download")
def download(job_id: int):
    job = _visible(job_id)
    path = jobs.result_file(job, current_app.config["JOBS_DIR"])
    if path is None:
        abort(404)
    return send_file(path, mimetype=job.result.get("mimetype") or "application/octet-stream", as_attachment=True,
                     download_name=path.name, max_age=0)


@bp.post("/<int:job_id>/cancel")
def cancel(job_id: int):
    job = _visible(job_id)
    if CancelForm().validate_on_submit() and not job.finished:
        jobs.request_cancel(db.session, job)
        db.session.commit()
        flash(_("Cancelled.") if job.state == "cancelled" else _("The job stops at its next step."), "info")
    return redirect(url_for("jobs.show", job_id=job.id))


# --- the regulator's long work ----------------------------------------------------------------

@bp.route("/scan", methods=["GET", "POST"])
@role_required("regulator", "admin")
def scan():
    """Every anomaly rule on every live item: minutes at national scale, so a job. One at a
    time: starting it while it runs shows the running one."""
    form = StartForm()
    if form.validate_on_submit():
        job_id, created = jobs.enqueue_now("scan", current_user.id, {"lang": current_language()}, active_key="scan")
        if not created:
            flash(_("A full scan is already under way; this is its progress."), "info")
        return redirect(url_for("jobs.show", job_id=job_id))
    recent = [(job, describe(job)) for job in jobs.visible_jobs(db.session, current_user) if job.kind == "scan"][:10]
    return render_template("jobs/scan.html", form=form, recent=recent)


@bp.post("/bulk")
@role_required("regulator", "admin")
def bulk():
    if StartForm().validate_on_submit():
        job_id, created = bulk_download.start_build_job(current_user.id, force=True)
        if not created:
            flash(_("The bulk download is already being regenerated; this is its progress."), "info")
        return redirect(url_for("jobs.show", job_id=job_id))
    return redirect(url_for("jobs.index"))


# --- a big import's preview (the check ran as a job) --------------------------------------------

@bp.route("/<int:job_id>/import", methods=["GET", "POST"])
@role_required("publisher")
def import_preview(job_id: int):
    job = _visible(job_id)
    if job.kind != "import.preview" or job.state != "done":
        return redirect(url_for("jobs.show", job_id=job.id))
    preview = job.result
    pending = imports.get_pending(db.session, preview["token"], current_user)
    if pending is None:
        flash(_("This upload was already imported or discarded."), "info")
        return redirect(url_for("publisher.import_upload"))
    form = ImportConfirmForm()
    if form.validate_on_submit():
        if form.discard.data:
            return discard_upload(pending)
        if preview["ok"] and form.fingerprint.data == preview["fingerprint"]:
            apply = jobs.enqueue(db.session, "import.apply", current_user, {
                "token": pending.token, "effective_from": preview["effective_from"],
                "fingerprint": preview["fingerprint"], "reason": form.reason.data or "", "lang": current_language()})
            db.session.commit()
            return redirect(url_for("jobs.show", job_id=apply.id))
        flash(_("The file has errors; nothing was imported."), "error")
    form.token.data, form.fingerprint.data = preview["token"], preview["fingerprint"]
    form.effective_from.data = preview["effective_from"]
    return render_template("jobs/import_preview.html", job=job, preview=preview, form=form, firm=current_user.firm)
