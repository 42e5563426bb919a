"""The bulk download kept in step with the registry.

Layout of BULK_DIR (instance/bulk):

  gen-<time>-<random>/  one complete download (exports/bulk.py); the newest two are kept,
                        so a file opened just before a swap can still be read
  gen-…/.summary.json   the manifest without its chain heads (which grow with the firms),
                        plus the manifest's own size and SHA-256: what the pages read
  current               a symlink to the generation being served, swapped atomically
  stale, built          nanosecond clock readings: the last change to the registry, and
                        the moment the current generation began reading it
  .lock                 held (flock) while a generation is built

A generation is built in a temporary directory and renamed into place, then `current` is
repointed: readers see the old download or the new one, never half of one. The download is
stale when a change was marked after the current generation began to read — a change
committed while a build runs marks it stale again, so it is never lost.

Changes are marked after commit: a published version (the publish hook), a firm's details
(its rows changing in a flush; firms change without a version), a bulk load. Draft edits
do not mark it. Nothing is marked before a download was first built (it is stale anyway).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from ..exports.bulk import write_bulk
from ..verify_bulk import MANIFEST, sha256_file
from ..models import AuditEvent, FeeItemVersion, Firm, FirmPort
from . import hooks
from .registry import today

log = logging.getLogger(__name__)

CURRENT, STALE, BUILT, LOCK, SUMMARY = "current", "stale", "built", ".lock", ".summary.json"
_SESSION_KEY = "feereg.bulk_download_changed"


@dataclass
class Download:
    directory: Path | None
    #: The manifest but its chain heads, with `chain_count` and `manifest` (bytes, sha256).
    summary: dict | None
    #: The files are older than the registry (a rebuild is under way or failed).
    stale: bool

    @property
    def ready(self) -> bool:
        return self.summary is not None


class BulkStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @classmethod
    def from_config(cls, app: Flask | None = None) -> "BulkStore":
        return cls((app or current_app).config["BULK_DIR"])

    # --- reading ---------------------------------------------------------------------

    def current_dir(self) -> Path | None:
        link = self.root / CURRENT
        try:
            return self.root / os.readlink(link)
        except OSError:
            return None

    def summary(self, directory: Path | None = None) -> dict | None:
        directory = directory or self.current_dir()
        if directory is None:
            return None
        try:
            return json.loads((directory / SUMMARY).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def _reading(self, name: str) -> int:
        try:
            return int((self.root / name).read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def is_stale(self) -> bool:
        if self.current_dir() is None:
            return True
        return self._reading(STALE) > self._reading(BUILT)

    def download(self) -> Download:
        directory = self.current_dir()
        return Download(directory, self.summary(directory), self.is_stale())

    # --- writing ---------------------------------------------------------------------

    def _write_reading(self, name: str, value: int) -> None:
        temp = self.root / f".{name}.{secrets.token_hex(4)}"
        temp.write_text(str(value))
        os.replace(temp, self.root / name)

    def mark_stale(self) -> None:
        if self.current_dir() is None:  # never built: nothing to mark
            return
        self._write_reading(STALE, time.time_ns())

    @contextmanager
    def lock(self, blocking: bool = True):
        """Held while building: across processes (gunicorn workers, the CLI) by flock, which
        the kernel releases when a holder dies. Yields whether it was acquired."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                acquired = True
            except BlockingIOError:
                acquired = False
            try:
                yield acquired
            finally:
                if acquired:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def build(self, engine, progress=None) -> dict:
        """Write a new generation and make it current; the caller holds the lock.
        `progress(done, total)` follows the versions written (the job's page shows it)."""
        self._remove_leftovers()
        began = time.time_ns()  # before the first read: a change after it marks stale again
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        temp = self.root / f".tmp-{stamp}-{secrets.token_hex(4)}"
        temp.mkdir(parents=True)
        try:
            with engine.connect() as conn:
                manifest = write_bulk(conn, temp, today(), progress)
            _write_summary(temp, manifest)
            generation = self.root / f"gen-{stamp}-{secrets.token_hex(4)}"
            os.rename(temp, generation)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        link = self.root / f".link-{secrets.token_hex(4)}"
        os.symlink(generation.name, link)
        os.replace(link, self.root / CURRENT)
        self._write_reading(BUILT, began)
        self._prune(keep=2)
        return manifest

    def _remove_leftovers(self) -> None:
        """Temporary directories of a build that died (the lock is ours, so none is live)."""
        for path in self.root.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)
        for path in self.root.glob(".link-*"):
            path.unlink(missing_ok=True)

    def _prune(self, keep: int) -> None:
        current = self.current_dir()
        generations = sorted(self.root.glob("gen-*"), key=lambda p: p.stat().st_mtime, reverse=True)
        kept = [p for p in generations if p == current] + [p for p in generations if p != current][:keep - 1]
        for path in generations:
            if path not in kept:
                shutil.rmtree(path, ignore_errors=True)


def _write_summary(directory: Path, manifest: dict) -> None:
    """What a page needs of the manifest, without parsing every firm's chain head on each
    visit (17 MB of JSON at a million items)."""
    path = directory / MANIFEST
    summary = {key: value for key, value in manifest.items() if key != "chains"}
    summary["chain_count"] = len(manifest["chains"])
    summary["manifest"] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    (directory / SUMMARY).write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")


# --- keeping it fresh -------------------------------------------------------------------------

def rebuild(app: Flask | None = None, if_stale: bool = False) -> dict | None:
    """Build now, waiting for a build in progress elsewhere (the CLI, a cron job). With
    `if_stale`, only when stale (after waiting, the other build may have done it)."""
    from ..extensions import db

    store = BulkStore.from_config(app)
    with store.lock():
        if if_stale and not store.is_stale():
            return None
        return store.build(db.engine)


def fresh_download() -> Download:
    """The download to offer now. A stale one is rebuilt first while the registry is small
    enough to do it within the request (another request finding it stale waits for that
    build, then serves its result); a bigger registry is rebuilt in a background thread
    and the previous files are offered meanwhile, marked stale: as a job, whose progress
    regulators and operators see (services/jobs.py)."""
    from ..extensions import db

    store = BulkStore.from_config()
    if not store.is_stale():
        return store.download()
    if _small_enough(store, db):
        with store.lock():
            if store.is_stale():
                store.build(db.engine)
        return store.download()
    start_build_job()
    return store.download()


def _small_enough(store: BulkStore, db) -> bool:
    limit = current_app.config["BULK_REBUILD_IN_REQUEST_MAX_VERSIONS"]
    summary = store.summary()
    if summary is not None:
        size = summary["counts"]["versions"]
    else:  # never built: the highest id is a cheap upper bound of the count
        size = db.session.scalar(select(func.max(FeeItemVersion.id))) or 0
    return size <= limit


def start_build_job(owner_id: int | None = None, force: bool = False) -> tuple[int, bool]:
    """Queue a rebuild as a job, unless one is queued or running already (on any server:
    the job's key is unique). Returns (job id, whether it is new)."""
    from . import jobs

    return jobs.enqueue_now("bulk", owner_id, {"force": force}, active_key="bulk")


def build_job(ctx) -> dict:
    """The job: build if stale (or asked to), waiting for a build in progress elsewhere (the
    CLI, a cron job); a failed build leaves the previous download in place."""
    from ..extensions import db
    from .jobs import N_

    store = BulkStore.from_config()
    ctx.progress(message=N_("Waiting for another build of the download to finish"))
    with store.lock():
        if not ctx.params.get("force") and not store.is_stale():
            return {"built": False}
        ctx.progress(message=N_("Writing the bulk download"), force=True)
        manifest = store.build(db.engine, lambda done, total: ctx.progress(done, total, N_(
            "Writing versions: %(done)s of %(total)s"), {"done": f"{done:,}", "total": f"{total:,}"}))
    return {"built": True, "counts": manifest["counts"], "generated_at": manifest["generated_at"]}


# --- marking it stale -------------------------------------------------------------------------

def mark_stale() -> None:
    if not has_app_context():
        log.warning("bulk download not marked stale (no application context); run `feereg bulk`")
        return
    BulkStore.from_config().mark_stale()


def _note_published(session: Session, versions: list) -> None:
    session.info[_SESSION_KEY] = True


def register() -> None:
    hooks.on_publish(_note_published)
    hooks.after_bulk_load(mark_stale)


@event.listens_for(Session, "before_flush")
def _note_firm_changes(session: Session, flush_context, instances) -> None:
    """Firms change without a new version (registration, profile, suspension)."""
    if session.info.get(_SESSION_KEY):
        return
    for obj in session.new | session.deleted:
        if isinstance(obj, (Firm, FirmPort)) or (isinstance(obj, AuditEvent) and obj.action == "firms.load"):
            session.info[_SESSION_KEY] = True
            return
    for obj in session.dirty:
        if isinstance(obj, Firm) and session.is_modified(obj):
            session.info[_SESSION_KEY] = True
            return


@event.listens_for(Session, "after_commit")
def _mark_after_commit(session: Session) -> None:
    if session.info.pop(_SESSION_KEY, False):
        try:
            mark_stale()
        except OSError:  # derived state must never undo a commit
            log.exception("bulk download not marked stale; run `feereg bulk`")


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_SESSION_KEY, None)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_soft_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_SESSION_KEY, None)
