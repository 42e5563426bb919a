"""`feereg jobs`: run queued long jobs in a dedicated process, and list them.

Web processes run the jobs they start in a thread; on several servers (or to keep heavy
work out of the web workers, with FEEREG_JOBS_RUN_IN_WEB=false) run `feereg jobs work`
on one or more machines: each claims queued jobs one at a time, safely alongside the
others, and takes over the jobs of a worker that died.
"""
from __future__ import annotations

import signal
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from ..extensions import db


@click.group("jobs")
def jobs_group():
    """Long jobs: scans, big imports, the bulk download, long PDFs."""


@jobs_group.command("work")
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit (for cron or a test).")
@click.option("--kind", "kinds", multiple=True, help="Only jobs of this kind (repeatable).")
@click.option("--poll", default=2.0, show_default=True, help="Seconds between looks at an empty queue.")
@with_appcontext
def work(once, kinds, poll):
    """Run queued jobs until stopped (SIGTERM or Ctrl-C ends after the current job)."""
    from ..services import job_kinds  # noqa: F401  (registers the kinds)
    from ..services import jobs

    unknown = [k for k in kinds if k not in jobs.KINDS]
    if unknown:
        raise click.BadParameter(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(sorted(jobs.KINDS))}")
    app = current_app._get_current_object()
    worker = jobs.new_worker_id()
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        click.echo("jobs: stopping after the current job", err=True)

    previous = signal.signal(signal.SIGTERM, stop)
    click.echo(f"jobs: worker {worker} ready", err=True)
    ran = 0
    try:
        while not stopping:
            reclaimed = jobs.reclaim_from_config(app)
            if reclaimed:
                click.echo(f"jobs: queued again (worker stopped): {', '.join(map(str, reclaimed))}", err=True)
            outcome = jobs.run_next(app, worker, kinds=list(kinds) or None)
            if outcome is not None:
                ran += 1
                click.echo(f"jobs: job {outcome[0]} {outcome[1]}")
                continue
            if once:
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"jobs: {ran} job(s) run", err=True)


@jobs_group.command("list")
@click.option("--state", type=click.Choice(["queued", "running", "done", "failed", "cancelled"]), default=None)
@click.option("--limit", default=30, show_default=True)
@with_appcontext
def list_jobs(state, limit):
    """The newest jobs: id, kind, state, progress, owner, times, error."""
    from ..models import Job, User

    stmt = (select(Job, User.email).outerjoin(User, User.id == Job.owner_id).order_by(Job.id.desc()).limit(limit)
            .execution_options(populate_existing=True))  # as the database has it now, workers write elsewhere
    if state:
        stmt = stmt.where(Job.state == state)
    for job, email in db.session.execute(stmt):
        progress = f"{job.progress_done}/{job.progress_total}" if job.progress_total else "-"
        beat = job.heartbeat_at.isoformat(timespec="seconds") if job.heartbeat_at else "-"
        line = (f"{job.id}\t{job.kind}\t{job.state}\t{progress}\t{email or 'system'}\t"
                f"queued {job.created_at.isoformat(timespec='seconds')}\theartbeat {beat}\ttries {job.attempts}")
        if job.error:
            line += f"\terror: {job.error.splitlines()[0][:200]}"
        click.echo(line)


COMMANDS = [jobs_group]
