"""Many publishers publishing at once: every firm's hash chain stays one line, every
publish either commits or is told of a conflict it can retry (none silently lost), and
each optimistic-lock conflict is a real one.

Eight workers × 25 publishes, each worker with its own session and connection: threads
on SQLite and PostgreSQL, and separate processes on PostgreSQL (where a production site
runs several gunicorn workers). Three shapes of contention: one item of one firm, many
items of one firm (new ones too), and a firm each.
"""
from __future__ import annotations

import multiprocessing
import threading
import traceback
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from feereg import create_app
from feereg.extensions import db
from feereg.models import FeeItem, FeeItemVersion, Firm, User
from feereg.search import get_backend
from feereg.services import history, registry
from feereg.services.errors import StaleItem

from .factories import item_values, make_firm, make_user, publish

WORKERS = 8
#: Publishes per worker: processes on PostgreSQL 25 (8 × 25); threads, which share one
#: interpreter's lock and so interleave less, 10. Eight workers on one item conflict on
#: nearly every try (each retry is a whole transaction): 10 there too.
ROUNDS = {"processes": 25, "threads": 10}
ROUNDS_ONE_ITEM = 10
SHAPES = ("one-item", "one-firm", "firm-each")


@dataclass
class Plan:
    """What one worker does: publish `rounds` times as `user_id`, to `item_id` (a new item
    every other round when `new_items`)."""
    worker: int
    user_id: int
    firm_id: int
    item_id: int
    rounds: int
    new_items: bool


def _publish_rounds(plan: Plan, start: threading.Barrier | None) -> list[dict]:
    """Runs inside an app context with its own session. One record per attempt."""
    session = db.session
    records = []
    actor = session.get(User, plan.user_id)
    if start is not None:
        start.wait()
    for round_ in range(plan.rounds):
        amount = Decimal(f"{plan.worker + 1}{round_:03d}.{plan.worker:02d}")  # unique to this publish
        way = round_ % 3 if plan.new_items else 0
        while True:
            expected = None
            try:
                if way == 1:  # a new item, drafted and published at once
                    firm = session.get(Firm, plan.firm_id)
                    item = registry.create_draft(session, firm, _values(amount, f"W{plan.worker}-R{round_}"), actor)
                    version = registry.publish_item(session, item, actor, registry.today())
                elif way == 2:  # the draft saved first; the publish a transaction of its own
                    item = session.get(FeeItem, plan.item_id)
                    registry.update_draft(session, item, {"amount": amount}, actor, item.lock_version)
                    session.commit()
                    expected = item.lock_version
                    version = registry.publish_item(session, item, actor, registry.today(), expected_lock=expected)
                else:  # edited and published in one go
                    item = session.get(FeeItem, plan.item_id)
                    expected = item.lock_version
                    registry.update_draft(session, item, {"amount": amount}, actor, expected)
                    version = registry.publish_item(session, item, actor, registry.today())
                item_id, seq = item.id, version.seq
                session.commit()
            except StaleItem:
                session.rollback()
                current = session.scalar(select(FeeItem.lock_version).where(FeeItem.id == plan.item_id))
                session.rollback()
                records.append({"kind": "conflict", "expected": expected, "current": current})
                continue  # what a person does: reload and publish again
            except OperationalError as exc:
                session.rollback()
                if _busy(exc):  # SQLite: another writer held the database past the busy timeout (a 503)
                    records.append({"kind": "busy"})
                    continue
                records.append(_error(exc))
                break
            except Exception as exc:  # noqa: BLE001 - anything else is a finding
                session.rollback()
                records.append(_error(exc))
                break
            records.append({"kind": "published", "item_id": item_id, "seq": seq, "amount": str(amount),
                            "expected": expected})
            break
    session.remove() if hasattr(session, "remove") else None
    return records


def _busy(exc: OperationalError) -> bool:
    return db.engine.dialect.name == "sqlite" and "database is locked" in str(exc.orig)


def _error(exc: Exception) -> dict:
    return {"kind": "error", "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=8)}


_VALUE_CACHE: dict = {}


def _values(amount: Decimal, code: str) -> dict:
    values = dict(_VALUE_CACHE["values"])
    values.update(amount=amount, fee_code=code, name_en=f"Documentation fee {code}")
    return values


def _thread_worker(app, plan: Plan, start, out: list):
    with app.app_context():
        out.append((plan.worker, _publish_rounds(plan, start)))


def _process_worker(config: dict, plan: Plan, start, queue):
    app = create_app(config)  # a process of its own: its own engine and connections
    with app.app_context():
        try:
            queue.put((plan.worker, _publish_rounds(plan, start)))
        finally:
            db.engine.dispose()


def _plans(shape: str, rounds: int) -> list[Plan]:
    _VALUE_CACHE["values"] = item_values()
    if shape == "firm-each":
        plans = []
        for worker in range(WORKERS):
            firm = make_firm("shipping_agent")
            user = make_user("publisher", firm)
            item = publish(firm, user, amount="100")
            plans.append(Plan(worker, user.id, firm.id, item.id, rounds, new_items=False))
        return plans
    firm = make_firm("shipping_agent")
    users = [make_user("publisher", firm) for _ in range(WORKERS)]
    if shape == "one-item":
        item = publish(firm, users[0], amount="100")
        return [Plan(w, users[w].id, firm.id, item.id, rounds, new_items=False) for w in range(WORKERS)]
    items = [publish(firm, users[w], amount="100", fee_code=f"OWN-{w}") for w in range(WORKERS)]
    return [Plan(w, users[w].id, firm.id, items[w].id, rounds, new_items=True) for w in range(WORKERS)]


def _run(app, session, shape: str, mode: str) -> tuple[list[Plan], dict[int, list[dict]]]:
    plans = _plans(shape, ROUNDS_ONE_ITEM if shape == "one-item" else ROUNDS[mode])
    session.commit()
    results: dict[int, list[dict]] = {}
    if mode == "threads":
        start = threading.Barrier(len(plans))
        out: list = []
        threads = [threading.Thread(target=_thread_worker, args=(app, plan, start, out)) for plan in plans]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        results = dict(out)
    else:
        context = multiprocessing.get_context("fork")
        start, queue = context.Barrier(len(plans)), context.Queue()
        config = {key: app.config[key] for key in (
            "TESTING", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SEARCH_DIR", "PDF_CACHE_DIR", "BULK_DIR",
            "RATELIMIT_ENABLED", "PASSWORD_HASH_FAST", "SEARCH_WRITER_TIMEOUT", "SEARCH_BACKEND")}
        db.session.remove()
        db.engine.dispose()  # no connection shared across fork
        processes = [context.Process(target=_process_worker, args=(config, plan, start, queue)) for plan in plans]
        for process in processes:
            process.start()
        for _ in processes:
            worker, records = queue.get(timeout=600)
            results[worker] = records
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
    assert sorted(results) == [plan.worker for plan in plans], "a worker died without reporting"
    return plans, results


def _check(plans: list[Plan], results: dict[int, list[dict]]) -> dict:
    session = db.session
    session.expire_all()
    records = [r for worker in sorted(results) for r in results[worker]]
    errors = [r for r in records if r["kind"] == "error"]
    assert not errors, "\n".join(f"{r['error']}\n{r['trace']}" for r in errors[:3])
    published = [r for r in records if r["kind"] == "published"]
    conflicts = [r for r in records if r["kind"] == "conflict"]
    # No publish lost: every intended publish committed (after retries).
    assert len(published) == sum(plan.rounds for plan in plans)

    firm_ids = sorted({plan.firm_id for plan in plans})
    versions = session.scalars(select(FeeItemVersion).where(FeeItemVersion.firm_id.in_(firm_ids))).all()
    setup_versions = len(firm_ids) if len(firm_ids) > 1 else len({plan.item_id for plan in plans})
    assert len(versions) == len(published) + setup_versions
    by_seq = {(v.firm_id, v.seq): v for v in versions}
    by_item_amount = {(v.item_id, str(v.amount)) for v in versions}
    for record in published:
        assert (record["item_id"], record["amount"]) in by_item_amount  # the committed values, as published
    for firm_id in firm_ids:
        firm = session.get(Firm, firm_id)
        seqs = sorted(seq for f, seq in by_seq if f == firm_id)
        assert seqs == list(range(1, firm.chain_seq + 1))  # one line: no gap, no fork
        assert history.verify_firm(session, firm) == []
    checked, problems = history.verify_all(session)
    assert problems == [] and checked >= len(firm_ids)

    # A conflict is told only when someone else really changed the item, and two publishes
    # never both succeeded from the same lock version of one item.
    for conflict in conflicts:
        assert conflict["current"] != conflict["expected"]
    for plan_item in {plan.item_id for plan in plans}:
        used = [r["expected"] for r in published if r["item_id"] == plan_item and r["expected"] is not None]
        assert len(used) == len(set(used))
    return {"published": len(published), "conflicts": len(conflicts),
            "busy": sum(r["kind"] == "busy" for r in records)}


def _index_is_complete() -> None:
    if get_backend().name == "null":
        return
    """Index writes contended too: whatever failed is pending, and one catch-up indexes it."""
    backend = get_backend()
    live = set(db.session.scalars(select(FeeItemVersion.item_id).where(
        history.in_force_on(registry.today()), FeeItemVersion.kind == "publish")))
    assert live <= backend.live_item_ids() | backend.pending.read()
    if backend.stale():
        backend.index_items(sorted(backend.pending.read()))
    assert backend.live_item_ids() == live and not backend.stale()


@pytest.fixture
def contended_app(app, request):
    """The real Whoosh index, or none (`null`) where the test is about the chains alone."""
    app.config["SEARCH_WRITER_TIMEOUT"] = 10.0
    app.config["SEARCH_BACKEND"] = request.param
    return app


@pytest.mark.parametrize("contended_app", ["null"], indirect=True)
@pytest.mark.parametrize("shape", SHAPES)
def test_publishers_in_threads(contended_app, session, shape):
    plans, results = _run(contended_app, session, shape, "threads")
    summary = _check(plans, results)
    if shape != "one-item":
        assert summary["conflicts"] == 0  # nobody else touches a worker's item


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("shape, contended_app", [("one-item", "null"), ("one-firm", "whoosh"), ("firm-each", "null")],
                         indirect=["contended_app"])
def test_publishers_in_processes_on_postgresql(contended_app, session, shape):
    assert db.engine.dialect.name == "postgresql"
    plans, results = _run(contended_app, session, shape, "processes")
    summary = _check(plans, results)
    if shape != "one-item":
        assert summary["conflicts"] == 0
    _index_is_complete()
