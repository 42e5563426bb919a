"""Long jobs (services/jobs.py): exclusive claims across threads and processes, progress seen
from other sessions while a job runs, failures that keep nothing, a dead worker's job taken
over, and the four kinds of long work run end to end through their pages."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from feereg.extensions import db
from feereg.models import AuditEvent, FeeItem, Firm, Flag, Job, PendingImport
from feereg.models.types import utcnow
from feereg.services import bulk_download, firms, imports, jobs
from feereg.services import job_kinds  # noqa: F401  (registers the real kinds)
from feereg.services.jobs import N_

from .conftest import csrf_token, login, post_form
from .factories import make_firm, make_user, new_credit_code, publish
from .pdf_support import pdf_text, require_pdf
from .test_imports import csv_bytes, row

FINISHED = ("done", "failed", "cancelled")
#: Events a test job waits on, by name (a job's "gate" parameter).
GATES: dict[str, threading.Event] = {}


def _test_job(ctx) -> dict:
    """A job kind for these tests: reports progress, may write, wait, save a file or fail."""
    p = ctx.params
    total = p.get("total", 0)
    ctx.progress(p.get("done", 0), total, N_("Checking rows: %(done)s of %(total)s"),
                 {"done": str(p.get("done", 0)), "total": str(total)}, force=True)
    if p.get("write_firm"):
        firms.create_firm(ctx.session, {"credit_code": p["write_firm"], "name_zh": "深圳半途测试有限公司",
                                        "name_en": "Half Way Test", "category": "forwarder", "ports": ["YANTIAN"]})
        ctx.session.flush()
    if p.get("file"):
        ctx.save_file("partial.txt", b"half of a result")
    if p.get("gate"):
        assert GATES[p["gate"]].wait(60), "the test never released the job"
    ctx.progress(total, total, force=True)  # where a cancel is noticed
    if p.get("fail"):
        raise RuntimeError(p["fail"])
    return {"ran_by": ctx.worker}


jobs.register_kind("test.job", _test_job, title=N_("Background jobs"))


@pytest.fixture(autouse=True)
def _threads_end(app, tmp_path):
    app.config["JOBS_DIR"] = str(tmp_path / "jobs")
    yield
    for gate in GATES.values():
        gate.set()
    assert jobs.join_threads(120), "a job thread outlived its test"
    GATES.clear()


def gate(name: str) -> threading.Event:
    GATES[name] = threading.Event()
    return GATES[name]


def snapshot(job_id: int) -> Job:
    """The job as another session sees it now."""
    with Session(db.engine, expire_on_commit=False) as other:
        return other.get(Job, job_id)


def wait_for(job_id: int, check=lambda job: job.state in FINISHED, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = snapshot(job_id)
        if check(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.state}: {job.message} {job.error}"
        time.sleep(0.05)


def poll_json(client, job_id: int, timeout: float = 180) -> dict:
    """What static/jobs.js does: read the JSON status until the job ends."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/jobs/{job_id}.json")
        assert response.status_code == 200 and response.headers["Cache-Control"] == "private, no-store"
        status = response.get_json()
        if status["finished"]:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def job_id_of(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    match = re.fullmatch(r"/jobs/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def hold(monkeypatch, kind: str) -> threading.Event:
    """Make a real kind's jobs wait for the test before doing their work."""
    release = gate(f"kind:{kind}")
    spec = jobs.KINDS[kind]
    real = spec.run

    def held(ctx):
        assert release.wait(60), "the test never released the job"
        return real(ctx)

    monkeypatch.setattr(spec, "run", held)
    return release


def assert_returned_at_once(job_id: int) -> None:
    state = snapshot(job_id).state
    assert state in ("queued", "running"), f"the request ran the job itself ({state})"


# --- the machinery ------------------------------------------------------------------------------

def test_claim_is_exclusive_under_concurrency(app, session):
    app.config["JOBS_RUN_IN_WEB"] = False
    ids = [jobs.enqueue(session, "test.job").id for _ in range(30)]
    session.commit()
    engine = db.engine
    start = threading.Barrier(4)
    claimed: dict[int, list[int]] = {n: [] for n in range(4)}

    def claimer(n: int) -> None:
        start.wait()
        while (job_id := jobs.claim(engine, f"worker-{n}")) is not None:
            claimed[n].append(job_id)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [job_id for got in claimed.values() for job_id in got]
    assert sorted(everything) == ids  # every job claimed, none twice
    with Session(engine) as other:
        rows = {job.id: job for job in other.scalars(select(Job))}
    for n, got in claimed.items():
        for job_id in got:
            assert rows[job_id].worker == f"worker-{n}" and rows[job_id].state == "running"
            assert rows[job_id].attempts == 1


def test_one_job_asked_for_by_many_workers_at_once_goes_to_one(app, session):
    app.config["JOBS_RUN_IN_WEB"] = False
    job_id = jobs.enqueue(session, "test.job").id
    session.commit()
    engine = db.engine
    start = threading.Barrier(6)
    results = []

    def claimer(n: int) -> None:
        start.wait()
        results.append(jobs.claim(engine, f"worker-{n}", job_id=job_id))

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results, key=str) == [job_id] + [None] * 5


def _cli_env(app) -> dict:
    env = dict(os.environ)
    env.update({"FEEREG_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "FEEREG_SECRET_KEY": "test-secret",
                "FEEREG_SEARCH_DIR": app.config["SEARCH_DIR"], "FEEREG_BULK_DIR": app.config["BULK_DIR"],
                "FEEREG_JOBS_DIR": app.config["JOBS_DIR"], "FEEREG_PDF_CACHE_DIR": app.config["PDF_CACHE_DIR"]})
    return env


def test_two_worker_processes_never_run_one_job_twice(app, session):
    app.config["JOBS_RUN_IN_WEB"] = False
    regulator = make_user("regulator")
    firm = make_firm(category="offport_yard")
    publish(firm, make_user("publisher", firm))
    ids = [jobs.enqueue(session, "scan", regulator).id for _ in range(6)]
    session.commit()
    command = [str(Path(sys.executable).with_name("feereg")), "jobs", "work", "--once"]
    workers = [subprocess.Popen(command, env=_cli_env(app), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    ran = [int(m) for out, _err in outputs for m in re.findall(r"^jobs: job (\d+) done$", out, re.M)]
    assert sorted(ran) == ids, outputs  # each job reported done by exactly one process
    session.expire_all()
    assert [job.attempts for job in session.scalars(select(Job).order_by(Job.id))] == [1] * 6
    scans = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "checks.scan"))
    assert scans == 6


def test_progress_is_visible_from_another_session_while_the_job_runs(app, client, session):
    publisher = make_user("publisher", make_firm())
    release = gate("progress")
    job = jobs.enqueue(session, "test.job", publisher, {"done": 3, "total": 10, "gate": "progress"})
    session.commit()  # the thread starts after the commit
    running = wait_for(job.id, lambda j: j.state == "running" and j.progress_done == 3)
    assert running.progress_total == 10 and running.message == "Checking rows: %(done)s of %(total)s"
    assert running.heartbeat_at is not None and running.worker
    login(client, publisher.email)
    status = client.get(f"/jobs/{job.id}.json?lang=en").get_json()
    assert status["state"] == "running" and not status["finished"]
    assert (status["done"], status["total"], status["percent"]) == (3, 10, 30)
    assert status["message"] == "Checking rows: 3 of 10"
    assert client.get(f"/jobs/{job.id}.json?lang=zh").get_json()["message"] == "正在检查第 3 行，共 10 行"
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert '<progress id="job-%d-bar" data-job="bar" max="10" value="3">30%%</progress>' % job.id in page
    assert 'src="/static/jobs.js"' in page and "<script>" not in page  # the CSP allows no inline script
    assert f'href="/jobs/{job.id}"' in page  # the refresh link, for a browser without JavaScript
    release.set()
    done = wait_for(job.id)
    assert done.state == "done" and done.progress_done == 10 and done.result["ran_by"] == running.worker
    assert done.active_key is None and done.finished_at is not None


def test_a_failed_job_records_its_error_and_keeps_nothing(app, session):
    code = new_credit_code()
    job = jobs.enqueue(session, "test.job", None, {"write_firm": code, "file": True, "fail": "boom at row 7"})
    session.commit()
    failed = wait_for(job.id)
    assert failed.state == "failed" and "boom at row 7" in failed.error
    assert failed.message == "Failed" and failed.finished_at is not None
    session.expire_all()
    assert session.scalar(select(Firm).where(Firm.credit_code == code)) is None  # its write rolled back
    assert not (Path(app.config["JOBS_DIR"]) / str(job.id)).exists()  # and its half-made file removed


def test_a_dead_workers_job_is_taken_over(app, session):
    app.config["JOBS_RUN_IN_WEB"] = False
    job = jobs.enqueue(session, "test.job", None, {"total": 4})
    session.commit()
    engine = db.engine
    assert jobs.claim(engine, "gone-host:1:dead") == job.id
    assert jobs.reclaim_stale(engine, stale_seconds=60, max_attempts=3) == []  # its heartbeat is fresh
    session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    session.commit()
    assert jobs.reclaim_stale(engine, stale_seconds=60, max_attempts=3) == [job.id]
    queued = snapshot(job.id)
    assert queued.state == "queued" and queued.worker is None
    assert queued.message == "Restarted: the worker running it stopped"
    assert jobs.run_next(app, "new-host:2:alive") == (job.id, "done")
    done = snapshot(job.id)
    assert done.state == "done" and done.attempts == 2 and done.result["ran_by"] == "new-host:2:alive"
    # The dead worker, had it only stalled, can no longer finish or report on the job.
    with Session(engine) as late:
        with pytest.raises(jobs.JobLost):
            jobs._finish(late, job.id, "gone-host:1:dead", "done", result={})
    assert snapshot(job.id).result["ran_by"] == "new-host:2:alive"


def test_a_job_whose_workers_keep_dying_fails(app, session):
    app.config["JOBS_RUN_IN_WEB"] = False
    job = jobs.enqueue(session, "test.job")
    session.commit()
    engine = db.engine
    for attempt in range(3):
        assert jobs.claim(engine, f"dying-{attempt}") == job.id
        session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        session.commit()
        jobs.reclaim_stale(engine, stale_seconds=60, max_attempts=3)
    failed = snapshot(job.id)
    assert failed.state == "failed" and failed.attempts == 3 and "stopped 3 times" in failed.error


def test_a_watching_page_restarts_a_dead_workers_job(app, client, session):
    """A single server without `feereg jobs work`: the progress page's polling notices the
    dead worker and runs the job again in the web process."""
    owner = make_user("publisher", make_firm())
    app.config["JOBS_RUN_IN_WEB"] = False
    job = jobs.enqueue(session, "test.job", owner, {"total": 2})
    session.commit()
    jobs.claim(db.engine, "gone-host:1:dead")
    session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    session.commit()
    app.config["JOBS_RUN_IN_WEB"] = True
    login(client, owner.email)
    status = poll_json(client, job.id)
    assert status["state"] == "done" and snapshot(job.id).attempts == 2


def test_cancel_a_queued_and_a_running_job(app, client, session):
    owner = make_user("publisher", make_firm())
    app.config["JOBS_RUN_IN_WEB"] = False
    queued = jobs.enqueue(session, "test.job", owner)
    session.commit()
    login(client, owner.email)
    post_form(client, f"/jobs/{queued.id}/cancel", {}, form_page=f"/jobs/{queued.id}")
    assert snapshot(queued.id).state == "cancelled"
    app.config["JOBS_RUN_IN_WEB"] = True
    release = gate("cancel")
    running = jobs.enqueue(session, "test.job", owner, {"gate": "cancel", "file": True})
    session.commit()
    wait_for(running.id, lambda j: j.state == "running")
    post_form(client, f"/jobs/{running.id}/cancel", {}, form_page=f"/jobs/{running.id}")
    release.set()
    ended = wait_for(running.id)
    assert ended.state == "cancelled" and not (Path(app.config["JOBS_DIR"]) / str(running.id)).exists()


def test_cli_lists_and_works_the_queue(app, runner, session):
    app.config["JOBS_RUN_IN_WEB"] = False
    owner = make_user("regulator", email="lister@example.gov")
    job = jobs.enqueue(session, "test.job", owner, {"total": 5})
    session.commit()
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0 and f"{job.id}\ttest.job\tqueued\t-\tlister@example.gov" in listed.output
    worked = runner.invoke(args=["jobs", "work", "--once"])
    assert worked.exit_code == 0, worked.output
    assert f"jobs: job {job.id} done" in worked.output
    listed = runner.invoke(args=["jobs", "list", "--state", "done"])
    assert f"{job.id}\ttest.job\tdone\t5/5\tlister@example.gov" in listed.output
    assert runner.invoke(args=["jobs", "work", "--once", "--kind", "nope"]).exit_code != 0


# --- the four kinds of long work, through their pages ---------------------------------------------

def test_full_scan_from_the_regulator_page(app, client, session, monkeypatch):
    firm = make_firm(category="offport_yard")
    publisher = make_user("publisher", firm)
    # An off-port yard charging a terminal's fee: MISPLACED, found on publish...
    publish(firm, publisher, fee_type="THC", name_zh="码头操作费", unit="per_container", amount="900",
            container_size="40")
    regulator = make_user("regulator")
    session.commit()
    raised_on_publish = session.scalar(select(func.count()).select_from(Flag))
    assert raised_on_publish >= 1
    session.execute(delete(Flag))  # ...and lost here, for the full scan to find again
    session.commit()
    release = hold(monkeypatch, "scan")
    login(client, regulator.email)
    page = client.get("/jobs/scan?lang=en").get_data(as_text=True)
    assert "<h1>Full anomaly scan</h1>" in page and "Start a full scan" in page
    job_id = job_id_of(post_form(client, "/jobs/scan", {}))
    assert_returned_at_once(job_id)
    again = job_id_of(post_form(client, "/jobs/scan", {}))  # one scan at a time
    assert again == job_id
    release.set()
    status = poll_json(client, job_id)
    assert status["state"] == "done" and status["result_url"] == "/regulator/flags"
    job = snapshot(job_id)
    assert job.result["raised"] == raised_on_publish and job.result["items"] == 1
    assert session.scalar(select(func.count()).select_from(Flag)) == raised_on_publish
    assert job.progress_done == job.progress_total == 1


def _big_file(code: str, rows: int) -> bytes:
    return csv_bytes([row(code, fee_code=f"BIG-{n}", amount=str(100 + n)) for n in range(rows)])


def test_big_import_is_checked_and_published_as_jobs(app, client, session, monkeypatch):
    app.config["IMPORT_JOB_ROWS"] = 5
    firm = make_firm(category="shipping_agent")
    publisher = make_user("publisher", firm)
    session.commit()
    login(client, publisher.email)
    release = hold(monkeypatch, "import.preview")
    upload = post_form(client, "/publisher/import", {"file": (io.BytesIO(_big_file(firm.credit_code, 12)), "big.csv")},
                       content_type="multipart/form-data")
    job_id = job_id_of(client.get(upload.headers["Location"]))
    assert_returned_at_once(job_id)
    release.set()
    status = poll_json(client, job_id)
    assert status["state"] == "done" and status["result_url"] == f"/jobs/{job_id}/import"
    preview_page = client.get(status["result_url"]).get_data(as_text=True)
    assert "big.csv" in preview_page and "<strong>12</strong>" in preview_page
    assert session.scalar(select(func.count()).select_from(FeeItem)) == 0  # checked, not published
    preview = snapshot(job_id).result
    release = hold(monkeypatch, "import.apply")
    confirm = post_form(client, status["result_url"], {"token": preview["token"], "fingerprint": preview["fingerprint"],
                                                      "effective_from": "", "reason": "new tariff", "confirm": "1"})
    apply_id = job_id_of(confirm)
    assert_returned_at_once(apply_id)
    release.set()
    status = poll_json(client, apply_id)
    assert status["state"] == "done" and status["result_url"] == "/publisher/"
    session.expire_all()
    amounts = sorted(int(a) for a in session.scalars(select(FeeItem.amount).where(FeeItem.firm_id == firm.id)))
    assert amounts == [100 + n for n in range(12)]
    assert snapshot(apply_id).result["published"] == 12
    assert session.scalar(select(PendingImport.status)) == "applied"


def test_a_big_import_that_fails_while_publishing_writes_nothing(app, client, session, monkeypatch):
    app.config["IMPORT_JOB_ROWS"] = 5
    firm = make_firm(category="shipping_agent")
    publisher = make_user("publisher", firm)
    session.commit()
    real_apply = imports.apply_preview

    def apply_then_die(db_session, preview, actor, reason=""):
        counts = real_apply(db_session, preview, actor, reason)  # every version written...
        db_session.flush()
        raise RuntimeError("the disk filled up")  # ...then the job dies before it commits

    monkeypatch.setattr(imports, "apply_preview", apply_then_die)
    login(client, publisher.email)
    upload = post_form(client, "/publisher/import", {"file": (io.BytesIO(_big_file(firm.credit_code, 8)), "big.csv")},
                       content_type="multipart/form-data")
    preview_id = job_id_of(client.get(upload.headers["Location"]))
    poll_json(client, preview_id)
    preview = snapshot(preview_id).result
    apply_id = job_id_of(post_form(client, f"/jobs/{preview_id}/import", {
        "token": preview["token"], "fingerprint": preview["fingerprint"], "effective_from": "", "confirm": "1"}))
    status = poll_json(client, apply_id)
    assert status["state"] == "failed" and "the disk filled up" in status["error"]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(FeeItem)) == 0
    assert session.scalar(select(PendingImport.status)) == "pending"  # can be confirmed again


def test_bulk_download_rebuild_is_a_job_regulators_watch(app, client, session, monkeypatch):
    firm = make_firm(category="offport_yard")
    publisher = make_user("publisher", firm)
    for n in range(3):
        publish(firm, publisher, fee_code=f"B-{n}", amount=str(50 + n))
    regulator = make_user("regulator")
    session.commit()
    release = hold(monkeypatch, "bulk")
    login(client, regulator.email)
    job_id = job_id_of(post_form(client, "/jobs/bulk", {}, form_page="/jobs/"))
    assert_returned_at_once(job_id)
    release.set()
    status = poll_json(client, job_id)
    assert status["state"] == "done" and status["result_url"] == "/data"
    job = snapshot(job_id)
    assert job.result["built"] is True and job.result["counts"]["versions"] == 3
    assert job.progress_done == job.progress_total == 3
    summary = bulk_download.BulkStore.from_config(app).summary()
    assert summary["counts"] == job.result["counts"]
    # A stale download of a big registry found by a public visit: a system job, which
    # regulators see in their list and a publisher does not.
    app.config["BULK_REBUILD_IN_REQUEST_MAX_VERSIONS"] = 0
    publish(firm, publisher, fee_code="B-9", amount="99")
    session.commit()
    anonymous = app.test_client()
    assert anonymous.get("/data").status_code == 200
    system_job = session.scalar(select(Job).where(Job.kind == "bulk", Job.owner_id.is_(None)))
    assert system_job is not None
    assert poll_json(client, system_job.id)["state"] == "done"
    listing = client.get("/jobs/?lang=en").get_data(as_text=True)
    assert f'href="/jobs/{system_job.id}"' in listing and "the registry itself" in listing
    other = app.test_client()
    login(other, publisher.email)
    assert other.get(f"/jobs/{system_job.id}.json").status_code == 404
    assert f'href="/jobs/{system_job.id}"' not in other.get("/jobs/").get_data(as_text=True)


def _flags(firm, count: int) -> None:
    now = utcnow()
    db.session.execute(insert(Flag), [
        {"rule": "PEER_OUTLIER", "severity": "medium", "status": "open", "firm_id": firm.id, "fee_type_code": "LOLO",
         "subject": f"bulk:{n}", "fingerprint": f"PEER_OUTLIER|bulk:{n}|v0", "explanation": "",
         "evidence": {"amount_cny": 1000 + n, "ratio": 4, "median": 250, "peers": 6, "port": "YANTIAN", "z": 9},
         "note": "", "firm_answer": "", "created_at": now - timedelta(seconds=n), "updated_at": now}
        for n in range(count)])


def test_a_5000_flag_report_pdf_is_made_as_a_job(app, client, session, monkeypatch, database_url):
    require_pdf()
    # 5,000 flags lay out in about 45 s of CPU; the layout does not depend on the database, so
    # PostgreSQL's run (the job machinery on PostgreSQL) lays out three parts of a shorter one.
    count = 5000
    if not database_url.startswith("sqlite"):
        count = 1200
        app.config["REPORT_PDF_JOB_ROWS"] = 1000
    firm = make_firm(category="offport_yard", name_zh="深圳五千疑点测试堆场有限公司")
    regulator = make_user("regulator")
    _flags(firm, count)
    session.commit()
    login(client, regulator.email)
    report = client.get("/regulator/report?status=open").get_data(as_text=True)
    assert "/regulator/report.pdf" in report and "/regulator/report.csv" in report
    assert 'href="/regulator/report.pdf' not in report  # no in-request PDF of thousands of flags...
    start_page = client.get("/regulator/report.pdf?status=open")
    assert start_page.status_code == 200 and start_page.mimetype == "text/html"  # ...but a job to start
    release = hold(monkeypatch, "report.pdf")
    response = client.post("/regulator/report.pdf?status=open",
                           data={"csrf_token": csrf_token(client, "/regulator/report.pdf?status=open")})
    job_id = job_id_of(response)
    assert_returned_at_once(job_id)
    assert client.post("/regulator/report.pdf?status=open").status_code == 400  # CSRF
    release.set()
    started = time.process_time()
    status = poll_json(client, job_id, timeout=600)
    assert status["state"] == "done", status
    assert status["result_url"] == f"/jobs/{job_id}/download"
    job = snapshot(job_id)
    assert job.result["rows"] == count and job.progress_done == job.progress_total == count
    with client.get(status["result_url"]) as download:
        assert download.status_code == 200 and download.mimetype == "application/pdf"
        body = download.data
    pages, texts = pdf_text(body)
    text = "".join(texts)
    assert "审计报告" in text and "深圳五千疑点测试堆场有限公司" in text
    flag_ids = set(session.scalars(select(Flag.id)))
    assert {int(n) for n in re.findall(r"#(\d+)", text)} == flag_ids  # every flag, once listed
    assert len(re.findall(r"#\d+", text)) == count
    numbers = [int(re.search(r"第\s*(\d+)\s*页", page_text).group(1)) for page_text in texts]
    assert numbers == list(range(1, pages + 1))  # page numbers run on through the parts
    print(f"\n{count:,}-flag report PDF: {pages} pages, {len(body):,} bytes; test process CPU "
          f"{time.process_time() - started:.1f} s (the job runs in a thread of this process)")
    # Any regulator may download a regulator's job; a publisher may not even see it.
    colleague, publisher = make_user("regulator"), make_user("publisher", firm)
    session.commit()
    colleague_client = app.test_client()
    login(colleague_client, colleague.email)
    with colleague_client.get(status["result_url"]) as again:
        assert again.status_code == 200 and again.data == body
    publisher_client = app.test_client()
    login(publisher_client, publisher.email)
    for url in (f"/jobs/{job_id}", f"/jobs/{job_id}.json", status["result_url"]):
        assert publisher_client.get(url).status_code == 404, url


# --- who may see what -------------------------------------------------------------------------------

def test_only_the_owner_sees_and_downloads_a_publishers_job(app, client, session):
    firm = make_firm()
    owner = make_user("publisher", firm)
    colleague = make_user("publisher", firm)
    regulator = make_user("regulator")
    job = jobs.enqueue(session, "test.job", owner, {"file": True})
    session.commit()
    wait_for(job.id)
    # A finished job with a file: the owner downloads it (give the test kind's file a link).
    session.execute(update(Job).where(Job.id == job.id).values(result={"file": "result.txt", "mimetype": "text/plain"}))
    session.commit()
    folder = Path(app.config["JOBS_DIR"]) / str(job.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.txt").write_text("owner only")
    login(client, owner.email)
    with client.get(f"/jobs/{job.id}/download") as download:
        assert download.data == b"owner only"
    assert f'href="/jobs/{job.id}"' in client.get("/jobs/").get_data(as_text=True)
    for other_user in (colleague, regulator):
        other = app.test_client()
        login(other, other_user.email)
        for url in (f"/jobs/{job.id}", f"/jobs/{job.id}.json", f"/jobs/{job.id}/download", f"/jobs/{job.id}/import"):
            assert other.get(url).status_code in (403, 404), (other_user.role, url)
        assert f'href="/jobs/{job.id}"' not in other.get("/jobs/").get_data(as_text=True)
    anonymous = app.test_client()
    assert anonymous.get(f"/jobs/{job.id}.json").status_code == 302  # to the login page
    # A file name in a result never leads outside the job's folder.
    session.execute(update(Job).where(Job.id == job.id).values(result={"file": "../../secret_key"}))
    session.commit()
    assert client.get(f"/jobs/{job.id}/download").status_code == 404


def test_regulator_pages_link_the_jobs(app, client, session):
    regulator, publisher_user = make_user("regulator"), make_user("publisher", make_firm())
    session.commit()
    login(client, regulator.email)
    body = client.get("/regulator/?lang=en").get_data(as_text=True)
    assert 'href="/jobs/"' in body and "Background jobs" in body
    page = client.get("/jobs/?lang=en").get_data(as_text=True)
    assert 'href="/jobs/scan"' in page and 'action="/jobs/bulk"' in page
    publisher = app.test_client()
    login(publisher, publisher_user.email)
    assert publisher.get("/jobs/scan").status_code == 403
    assert post_form(publisher, "/jobs/bulk", {}, form_page="/jobs/").status_code == 403
    assert publisher.get("/jobs/999999.json").status_code == 404
