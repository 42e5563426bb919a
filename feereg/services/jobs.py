"""Long work run outside the web request that asks for it: jobs.

A job is a row (models/job.py). A page enqueues it and answers at once; a runner claims it,
runs its kind's function and records progress, the result or the error; the page polls
the row. Any process can be the runner, so several gunicorn workers on several servers
sharing one database need no other coordination:

* the web process that enqueued a job starts a thread for it right after the commit (a
  single server needs nothing more; JOBS_RUN_IN_WEB=False turns this off);
* `feereg jobs work` runs queued jobs in dedicated processes (feereg/commands/jobs.py).

Claiming is atomic across processes: on PostgreSQL an UPDATE of the oldest queued row
picked with FOR UPDATE SKIP LOCKED (concurrent claimers skip each other's rows), on SQLite
a compare-and-set UPDATE ... WHERE state = 'queued' (SQLite serialises writers). The claim
writes a worker token; every later write of the running job is conditional on it, so a
worker whose job was taken over cannot also finish it.

A job's own writes (flags, an import) happen in its session and commit in one transaction
together with its final state: a job that fails or dies leaves nothing half-written.
Progress and the heartbeat are committed in their own short transactions on another
connection, so other sessions see them while the job runs. A running job whose heartbeat
stopped (its process died) is put back in the queue, up to JOB_MAX_ATTEMPTS tries.

Progress messages are stored as English msgids with their arguments and translated when
shown: the worker does not know the reader's language.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from flask import Flask, current_app, g, has_app_context
from flask_babel import force_locale, gettext
from sqlalchemy import event, exc, func, select, update
from sqlalchemy.orm import Session, aliased

from ..extensions import db
from ..models import Job, User
from ..models.types import utcnow

log = logging.getLogger(__name__)

_ENQUEUED_KEY = "feereg.jobs_enqueued"
#: Seconds between two progress writes of one job (a final or forced write always goes).
PROGRESS_INTERVAL = 0.5
#: On SQLite a progress write waits at most this long for the write lock (milliseconds):
#: the job's own transaction may hold it, and progress is not worth stalling the job for.
SQLITE_PROGRESS_WAIT_MS = 100
#: Longest stored error text.
ERROR_MAX = 4000


def N_(message: str) -> str:
    """Marks a progress message for translation; it is stored as written, translated when shown."""
    return message


# --- kinds ------------------------------------------------------------------------------------

@dataclass
class Kind:
    name: str
    #: run(ctx) -> result dict; raises to fail (its transaction is rolled back).
    run: Callable[["JobContext"], dict | None]
    #: "owner": only the one who started it sees it; "regulator": every regulator and
    #: operator too (regulators' and system work).
    audience: str = "owner"
    #: The name of the thread a web process runs it in.
    thread_name: str = ""
    #: What the finished job's result links to: result_link(job) -> (url, label msgid) or None.
    result_link: Callable[[Job], tuple[str, str] | None] | None = None
    #: The title shown for it (an English msgid).
    title: str = ""


KINDS: dict[str, Kind] = {}


def register_kind(name: str, run, **kw) -> Kind:
    kind = Kind(name, run, **kw)
    KINDS[name] = kind
    return kind


def kind_of(job: Job) -> Kind | None:
    return KINDS.get(job.kind)


# --- enqueueing -------------------------------------------------------------------------------

def enqueue(session: Session, kind: str, owner: User | None = None, params: dict | None = None,
            active_key: str | None = None) -> Job:
    """Queue a job in the caller's transaction; it starts after the commit. (A job with an
    `active_key` is best queued by enqueue_now, which handles another holder of the key.)"""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(kind=kind, owner_id=owner.id if owner is not None else None, params=params or {},
              state="queued", message=N_("Waiting for a worker"), message_args={}, result={}, error="",
              progress_done=0, progress_total=0, attempts=0, cancel_requested=False, active_key=active_key)
    session.add(job)
    session.flush()
    session.info.setdefault(_ENQUEUED_KEY, []).append(kind)
    return job


def enqueue_now(kind: str, owner_id: int | None = None, params: dict | None = None,
                active_key: str | None = None) -> tuple[int, bool]:
    """Queue a job in a transaction of its own, and start it. With `active_key`, work that
    must not run twice at once: an unfinished job holding the key is returned instead of a
    new one, even when another process queues the same key at the same moment (the key is
    unique). Returns (job id, whether it was created)."""
    with Session(db.engine) as session:
        if active_key and (existing := active_job(session, active_key)) is not None:
            return existing.id, False
        owner = session.get(User, owner_id) if owner_id else None
        try:
            job = enqueue(session, kind, owner, params, active_key)
            session.commit()
        except exc.IntegrityError:
            session.rollback()
            existing = active_job(session, active_key) if active_key else None
            if existing is None:
                raise
            return existing.id, False
        return job.id, True


def active_job(session: Session, active_key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.active_key == active_key))


@event.listens_for(Session, "after_commit")
def _start_after_commit(session: Session) -> None:
    kinds = session.info.pop(_ENQUEUED_KEY, None)
    if kinds and has_app_context():
        try:
            for kind in kinds:
                start_thread(current_app._get_current_object(), KINDS[kind].thread_name)
        except Exception:  # noqa: BLE001 - a worker process will run it; never undo the commit
            log.exception("could not start a job thread; `feereg jobs work` will run the job")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_ENQUEUED_KEY, None)


# --- claiming ---------------------------------------------------------------------------------

def new_worker_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def claim(engine, worker: str, job_id: int | None = None, kinds: list[str] | None = None) -> int | None:
    """Take the oldest queued job (or the given one) for `worker`; None if there is none.
    Safe when many processes on many servers claim at once: each job goes to one of them."""
    now = utcnow()
    claimed = dict(state="running", worker=worker, started_at=now, heartbeat_at=now,
                   attempts=Job.attempts + 1, message=N_("Started"), message_args={})
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            pick = aliased(Job)
            candidate = select(pick.id).where(pick.state == "queued")
            if job_id is not None:
                candidate = candidate.where(pick.id == job_id)
            if kinds:
                candidate = candidate.where(pick.kind.in_(kinds))
            candidate = candidate.order_by(pick.id).limit(1).with_for_update(skip_locked=True, of=pick)
            row = conn.execute(update(Job).where(Job.id == candidate.scalar_subquery(), Job.state == "queued")
                               .values(**claimed).returning(Job.id)).first()
            return row[0] if row else None
        candidates = select(Job.id).where(Job.state == "queued")
        if job_id is not None:
            candidates = candidates.where(Job.id == job_id)
        if kinds:
            candidates = candidates.where(Job.kind.in_(kinds))
        for candidate_id in conn.execute(candidates.order_by(Job.id).limit(20)).scalars().all():
            # Compare-and-set: only one writer at a time on SQLite, and the loser's WHERE
            # no longer matches.
            won = conn.execute(update(Job).where(Job.id == candidate_id, Job.state == "queued").values(**claimed))
            if won.rowcount == 1:
                return candidate_id
    return None


def reclaim_stale(engine, stale_seconds: float, max_attempts: int) -> list[int]:
    """Put back in the queue the running jobs whose heartbeat stopped: their worker died
    (a killed process, a lost server). After `max_attempts` tries a job fails instead."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_seconds)
    stale = (Job.state == "running", Job.heartbeat_at < cutoff)
    with engine.begin() as conn:
        conn.execute(update(Job).where(*stale, Job.attempts >= max_attempts).values(
            state="failed", finished_at=now, worker=None, active_key=None,
            error=f"The worker running this job stopped {max_attempts} times; it was not tried again.",
            message=N_("Failed"), message_args={}))
        ids = list(conn.execute(select(Job.id).where(*stale)).scalars())
        for job_id in ids:
            conn.execute(update(Job).where(Job.id == job_id, *stale).values(
                state="queued", worker=None, message=N_("Restarted: the worker running it stopped"),
                message_args={}))
    for job_id in ids:
        log.warning("job %s: its worker stopped sending heartbeats; queued again", job_id)
    return ids


def reclaim_from_config(app: Flask | None = None) -> list[int]:
    cfg = (app or current_app).config
    return reclaim_stale(db.engine, cfg["JOB_STALE_SECONDS"], cfg["JOB_MAX_ATTEMPTS"])


# --- running ----------------------------------------------------------------------------------

class JobCancelled(Exception):
    """Raised by progress() when the owner asked to cancel."""


class JobLost(Exception):
    """The job is no longer this worker's (taken over after a missed heartbeat)."""


@dataclass
class JobContext:
    """What a kind's function gets: its parameters, a session for its work, progress."""
    job_id: int
    kind: str
    params: dict
    owner: User | None
    session: Session
    worker: str
    engine: Any
    jobs_dir: Path
    _last_write: float = 0.0
    _state: dict = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.params.get("lang") or current_app.config["BABEL_DEFAULT_LOCALE"]

    def progress(self, done: int | None = None, total: int | None = None, message: str | None = None,
                 args: dict | None = None, force: bool = False) -> None:
        """Record progress where every process can see it: `message` is an N_() msgid, `args`
        its %(name)s values. Cheap to call often: writes go at most every PROGRESS_INTERVAL
        unless the message changes or `force`."""
        message_args = args or {}
        values: dict = {}
        if done is not None:
            values["progress_done"] = int(done)
        if total is not None:
            values["progress_total"] = int(total)
        if message is not None:
            values["message"], values["message_args"] = message, message_args
        changed_message = message is not None and (message, message_args) != self._state.get("message")
        now = time.monotonic()
        if not (force or changed_message or now - self._last_write >= PROGRESS_INTERVAL):
            return
        values["heartbeat_at"] = utcnow()
        row = _write_running(self.engine, self.job_id, self.worker, values, returning=True)
        if row is _LOCKED:
            return  # SQLite, the job's own transaction holds the write lock: next time
        self._last_write = now
        if message is not None:
            self._state["message"] = (message, message_args)
        if row is None:
            raise JobLost(f"job {self.job_id} was taken over by another worker")
        if row:
            raise JobCancelled()

    def directory(self) -> Path:
        path = self.jobs_dir / str(self.job_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_file(self, name: str, body: bytes) -> str:
        """Write a result file atomically (a reader never sees half of it); returns its name."""
        directory = self.directory()
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(temp, directory / name)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return name


_LOCKED = object()


def _write_running(engine, job_id: int, worker: str, values: dict, returning: bool = False):
    """Update a running job of this worker in a short transaction of its own. Returns
    cancel_requested (False/True), None when the job is not this worker's any more, or
    _LOCKED when SQLite's write lock is held by the job's own transaction."""
    stmt = update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == "running").values(**values)
    if returning:
        stmt = stmt.returning(Job.cancel_requested)
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                waited = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_PROGRESS_WAIT_MS}")
                conn.commit()
            try:
                result = conn.execute(stmt)
                row = result.first() if returning else (result.rowcount or None)
                conn.commit()
            finally:
                if sqlite:
                    conn.rollback()
                    conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(waited)}")
                    conn.commit()
    except exc.OperationalError as error:
        if "locked" in str(error).lower():
            return _LOCKED
        raise
    if row is None:
        return None
    return bool(row[0]) if returning else True


class _Heartbeat:
    """Moves the job's heartbeat while it runs, whatever the job is doing (a long layout, a
    big transaction), so only a dead process stops it."""

    def __init__(self, engine, job_id: int, worker: str, every: float):
        self.engine, self.job_id, self.worker, self.every = engine, job_id, worker, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"feereg-job-{job_id}-heartbeat", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=self.every + 5)

    def _run(self):
        while not self._stop.wait(self.every):
            try:
                _write_running(self.engine, self.job_id, self.worker, {"heartbeat_at": utcnow()})
            except Exception:  # noqa: BLE001 - a missed beat is retried; many missed ones reclaim the job
                log.exception("job %s: heartbeat not written", self.job_id)


def run_claimed(app: Flask, job_id: int, worker: str) -> str:
    """Run a job this worker claimed, to its end; returns its final state."""
    with app.app_context():
        g.feereg_job_id = job_id  # flask_babel's force_locale needs a non-empty g
        engine = db.engine
        session = db.session
        job = session.get(Job, job_id)
        kind = KINDS.get(job.kind) if job is not None else None
        if job is None or job.worker != worker:
            session.remove()
            return "lost"
        jobs_dir = Path(app.config["JOBS_DIR"])
        shutil.rmtree(jobs_dir / str(job_id), ignore_errors=True)  # a dead attempt's leftovers
        ctx = JobContext(job_id, job.kind, dict(job.params or {}),
                         session.get(User, job.owner_id) if job.owner_id else None, session, worker, engine, jobs_dir)
        heartbeat = _Heartbeat(engine, job_id, worker, app.config["JOB_HEARTBEAT_SECONDS"])
        try:
            with heartbeat, force_locale(ctx.lang):
                if kind is None:
                    raise RuntimeError(f"no runner for job kind {job.kind!r} in this version of feereg")
                result = kind.run(ctx) or {}
                _finish(session, job_id, worker, "done", result=result,
                        message=N_("Done"), progress=True)
                session.commit()  # the job's work and its final state, together
            return "done"
        except JobCancelled:
            return _end_after_error(session, engine, jobs_dir, job_id, worker, "cancelled", "")
        except JobLost:
            session.rollback()
            log.warning("job %s: taken over by another worker; this run's work was rolled back", job_id)
            return "lost"
        except Exception as error:  # noqa: BLE001 - recorded on the job, shown to its owner
            log.exception("job %s (%s) failed", job_id, job.kind if job is not None else "?")
            return _end_after_error(session, engine, jobs_dir, job_id, worker, "failed", _error_text(error))
        finally:
            session.remove()


def _error_text(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text[:ERROR_MAX]


def _end_after_error(session, engine, jobs_dir: Path, job_id: int, worker: str, state: str, error: str) -> str:
    session.rollback()  # nothing of the job's own work is kept
    shutil.rmtree(jobs_dir / str(job_id), ignore_errors=True)
    with Session(engine) as own:
        if not _finish(own, job_id, worker, state, error=error,
                       message=N_("Cancelled") if state == "cancelled" else N_("Failed")):
            return "lost"
        own.commit()
    return state


def _finish(session: Session, job_id: int, worker: str, state: str, result: dict | None = None,
            error: str = "", message: str = "", progress: bool = False) -> bool:
    values = dict(state=state, finished_at=utcnow(), active_key=None, error=error, message=message,
                  message_args={})
    if result is not None:
        values["result"] = result
    if progress:
        values["progress_done"] = func.greatest(Job.progress_done, Job.progress_total) \
            if session.get_bind().dialect.name == "postgresql" else func.max(Job.progress_done, Job.progress_total)
    done = session.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.state == "running")
                           .values(**values).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        if session.in_transaction():
            session.rollback()
        raise_lost = state == "done"
        if raise_lost:
            raise JobLost(f"job {job_id} was taken over by another worker")
        return False
    return True


def run_next(app: Flask, worker: str, kinds: list[str] | None = None,
             job_id: int | None = None) -> tuple[int, str] | None:
    """Claim and run one job; None when there was nothing to claim."""
    with app.app_context():
        engine = db.engine
    claimed = claim(engine, worker, job_id=job_id, kinds=kinds)
    if claimed is None:
        return None
    return claimed, run_claimed(app, claimed, worker)


# --- the web process's runner threads -----------------------------------------------------------

RUNNER_NAME = "feereg-job-runner"
_threads_lock = threading.Lock()
_threads: list[threading.Thread] = []


def start_thread(app: Flask, name: str = "") -> threading.Thread | None:
    """Run queued jobs in a thread of this process, up to JOBS_WEB_THREADS at once; the
    thread takes jobs until the queue is empty. Nothing when web processes do not run jobs."""
    if not app.config.get("JOBS_RUN_IN_WEB", True):
        return None
    with _threads_lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        if len(_threads) >= app.config.get("JOBS_WEB_THREADS", 2):
            return None
        thread = threading.Thread(target=_web_runner, args=(app,), daemon=True, name=name or RUNNER_NAME)
        _threads.append(thread)
    thread.start()
    return thread


def _web_runner(app: Flask) -> None:
    worker = new_worker_id()
    try:
        while True:
            with app.app_context():
                engine = db.engine
            job_id = claim(engine, worker)
            if job_id is None:
                return
            with app.app_context():
                job_kind = db.session.scalar(select(Job.kind).where(Job.id == job_id))
                db.session.remove()
            kind = KINDS.get(job_kind)
            threading.current_thread().name = (kind.thread_name if kind else "") or RUNNER_NAME
            run_claimed(app, job_id, worker)
    except Exception:  # noqa: BLE001 - a worker process or the next page visit picks the job up
        log.exception("job runner thread stopped")


def join_threads(timeout: float = 60) -> bool:
    """Wait for this process's runner threads (tests; a graceful shutdown). True if all ended."""
    deadline = time.monotonic() + timeout
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def nudge(app: Flask, job: Job) -> None:
    """A page watching an unfinished job: if its worker died, queue it again; if it is
    queued (no worker process took it, or this process's threads were busy), run it here."""
    if job.state == "running":
        stale = utcnow() - timedelta(seconds=app.config["JOB_STALE_SECONDS"])
        if job.heartbeat_at is None or job.heartbeat_at < stale:
            reclaim_from_config(app)
            start_thread(app)
    elif job.state == "queued":
        start_thread(app)


# --- reading, for pages -----------------------------------------------------------------------

def can_see(job: Job, user) -> bool:
    """The owner sees a job; regulators and operators also see regulators' and system jobs."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if job.owner_id is not None and job.owner_id == user.id:
        return True
    kind = kind_of(job)
    return kind is not None and kind.audience == "regulator" and user.role in ("regulator", "admin")


def visible_jobs(session: Session, user, limit: int = 50) -> list[Job]:
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    regulator_kinds = [k.name for k in KINDS.values() if k.audience == "regulator"]
    if user.role in ("regulator", "admin"):
        stmt = stmt.where((Job.owner_id == user.id) | Job.kind.in_(regulator_kinds))
    else:
        stmt = stmt.where(Job.owner_id == user.id)
    return list(session.scalars(stmt))


def message_text(job: Job) -> str:
    """The job's progress message in the reader's language."""
    if not job.message:
        return ""
    try:
        return gettext(job.message, **(job.message_args or {}))
    except (KeyError, ValueError, TypeError):
        return job.message


def result_file(job: Job, jobs_dir: str | os.PathLike) -> Path | None:
    name = (job.result or {}).get("file")
    if job.state != "done" or not name or Path(name).name != name:
        return None
    path = Path(jobs_dir) / str(job.id) / name
    return path if path.is_file() else None


def request_cancel(session: Session, job: Job) -> None:
    """A queued job is cancelled at once; a running one stops at its next progress report."""
    if job.state == "queued":
        session.execute(update(Job).where(Job.id == job.id, Job.state == "queued").values(
            state="cancelled", finished_at=utcnow(), active_key=None, message=N_("Cancelled"), message_args={})
            .execution_options(synchronize_session=False))
    elif job.state == "running":
        job.cancel_requested = True
    session.flush()
    session.refresh(job)

