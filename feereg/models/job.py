from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import utcnow

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")


class Job(db.Model):
    """Long work (a full scan, a big import, the bulk download, a long PDF) run outside the
    web request that asked for it, by whichever process claims it (feereg/services/jobs.py).

    The row is the only shared state: any web worker on any server shows its progress, and
    a worker that dies leaves a heartbeat that stops moving, so another can take it over.
    """

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_state_id", "state", "id"),
        Index("ix_job_owner_id", "owner_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: What to run: a key of services.jobs.KINDS ("scan", "import.preview", "bulk"...).
    kind: Mapped[str] = mapped_column(String(32))
    #: Who asked; empty for work the system started itself (a stale bulk download).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    #: queued, running, done, failed, cancelled.
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress_done: Mapped[int] = mapped_column(default=0)
    #: 0 while the amount of work is not known yet.
    progress_total: Mapped[int] = mapped_column(default=0)
    #: An English msgid, translated when shown (the worker has no reader's language), and
    #: its %(name)s arguments.
    message: Mapped[str] = mapped_column(String(200), default="")
    message_args: Mapped[dict] = mapped_column(JSON, default=dict)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    #: What the job made: counts, and "file" (a name under JOBS_DIR/<id>/) for a download.
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    #: Set while queued or running for work that must not run twice at once ("bulk",
    #: "scan"); unique, so a second request finds the first job instead of adding one.
    active_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The claim: host, process and a random part. Every write of a running job is
    #: conditional on it, so a worker whose job was reclaimed cannot finish it too.
    worker: Mapped[str | None] = mapped_column(String(120))
    attempts: Mapped[int] = mapped_column(default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: Moved by the running worker every few seconds; stale means the worker died.
    heartbeat_at: Mapped[datetime | None]

    owner = relationship("User")

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, int(100 * self.progress_done / self.progress_total))
