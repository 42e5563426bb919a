"""Faults: the search index lost, damaged or locked, the database going away, an import
crashing half-way. In each case no published change is lost, the site says what is
wrong (in Chinese and English) instead of a stack trace, and `feereg reindex` and
`feereg verify` bring it back and prove it.

Everything is real: the Whoosh index on disk, the database, the `feereg` commands.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, make_url, select, text
from whoosh import index as whoosh_index

from feereg.extensions import db
from feereg.models import FeeItem, FeeItemVersion, Firm
from feereg.search import get_backend
from feereg.services import history, hooks, registry

from .conftest import login, post_form
from .factories import make_firm, make_user, publish
from .test_imports import csv_bytes, row
from .test_web_publisher import item_form

SEARCH_DOWN_ZH = "搜索暂时不可用"
SEARCH_DOWN_EN = "Search is not available right now"
DB_DOWN_ZH = "数据库暂时无法访问"
DB_DOWN_EN = "The database is not available right now"


# --- helpers ---------------------------------------------------------------------------


@pytest.fixture
def world(app, session):
    """A yard with one published fee, committed, so the index has been built."""
    yard = make_firm("offport_yard", ports=("YANTIAN",), name_zh="盐田故障测试堆场有限公司")
    user = make_user("publisher", yard)
    item = publish(yard, user, fee_type="LOLO", name_zh="港外堆场吊箱费", name_en="Yard lift on/off",
                   unit="per_container", amount="180")
    session.commit()
    backend = get_backend()
    assert backend.exists() and item.id in backend.live_item_ids()
    return yard, user, item


def found_ids(client, query: str) -> set[int]:
    response = client.get("/search", query_string={"q": query, "lang": "en"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return {int(i) for i in re.findall(r'href="/items/(\d+)"', response.get_data(as_text=True))}


def assert_search_down(client, query: str = "吊箱") -> None:
    """503, a message in the reader's language, no stack trace."""
    for lang, message in (("zh", SEARCH_DOWN_ZH), ("en", SEARCH_DOWN_EN)):
        response = client.get("/search", query_string={"q": query, "lang": lang})
        body = response.get_data(as_text=True)
        assert response.status_code == 503, body[:300]
        assert response.headers.get("Retry-After")
        assert message in body
        assert "Traceback" not in body and "Error:" not in body
    response = client.get("/api/v1/search", query_string={"q": query})
    assert response.status_code == 503 and response.headers.get("Retry-After")
    assert response.get_json()["status"] == 503


def web_publish(client, email: str, name_zh: str, **form) -> int:
    """Publish a new item as the firm's publisher, through the site; returns its id."""
    login(client, email)
    values = {"fee_type": "CLEAN", "name_en": "Container cleaning", "unit": "per_container", "amount": "75", **form}
    response = post_form(client, "/publisher/items/new", item_form(publish="y", name_zh=name_zh, **values))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    item = db.session.scalar(select(FeeItem).where(FeeItem.name_zh == name_zh))
    assert item is not None and item.status == "published"
    return item.id


def assert_committed_and_chained(firm_id: int, item_id: int) -> None:
    """The change is in the database, in the firm's hash chain, which verifies."""
    db.session.expire_all()
    version = db.session.scalar(select(FeeItemVersion).where(FeeItemVersion.item_id == item_id))
    assert version is not None
    firm = db.session.get(Firm, firm_id)
    assert firm.chain_head == db.session.scalar(
        select(FeeItemVersion.hash).where(FeeItemVersion.firm_id == firm.id).order_by(FeeItemVersion.seq.desc()))
    assert history.verify_firm(db.session, firm) == []


def run_verify(runner) -> None:
    result = runner.invoke(args=["verify"])
    assert result.exit_code == 0, result.output
    assert "firm chains intact" in result.output


def run_reindex(runner) -> None:
    result = runner.invoke(args=["reindex"])
    assert result.exit_code == 0, result.output
    assert "reindex:" in result.output


def assert_index_matches_database() -> None:
    """Every published item in force today is found by the index, and nothing else."""
    today = registry.today()
    live = set(db.session.scalars(
        select(FeeItemVersion.item_id).where(history.in_force_on(today), FeeItemVersion.kind == "publish")))
    backend = get_backend()
    assert backend.live_item_ids() == live
    assert not backend.stale()


# --- (a) the index directory deleted while the site runs ------------------------------


@pytest.mark.parametrize("auto_rebuild", [True, False], ids=["small-registry", "large-registry"])
def test_deleted_index_directory(app, client, runner, world, auto_rebuild):
    yard, user, first = world
    if not auto_rebuild:  # a registry too big to rebuild inside a request waits for `feereg reindex`
        app.config["SEARCH_AUTO_REBUILD_MAX_ITEMS"] = 0
    backend = get_backend()
    shutil.rmtree(backend.directory)
    assert_search_down(client)

    new_id = web_publish(client, user.email, "洗箱费（删除索引后）")
    assert_committed_and_chained(yard.id, new_id)
    if auto_rebuild:
        # The first write finds no index and builds it from the database: both items in it.
        assert {first.id, new_id} <= found_ids(client, "吊箱") | found_ids(client, "洗箱")
    else:
        assert_search_down(client)
        run_reindex(runner)
    assert found_ids(client, "吊箱") == {first.id}
    assert found_ids(client, "洗箱") == {new_id}
    assert_index_matches_database()
    run_verify(runner)


# --- (b) the index damaged --------------------------------------------------------------


def _garble(path: Path) -> None:
    path.write_bytes(b"\x00garbage\xff" * 64)


def _truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(max(1, path.stat().st_size // 3))


DAMAGE = {
    "toc-garbled": lambda d: [_garble(p) for p in d.glob("*.toc")],
    "toc-removed": lambda d: [p.unlink() for p in d.glob("*.toc")],
    "segments-truncated": lambda d: [_truncate(p) for p in d.glob("*.seg")],
    "segments-garbled": lambda d: [_garble(p) for p in d.glob("*.seg")],
    "item-store-garbled": lambda d: [_garble(p) for p in d.glob("items.sqlite*")],
    "everything-garbled": lambda d: [_garble(p) for p in d.iterdir() if p.is_file()],
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_index(client, runner, world, damage):
    yard, user, first = world
    backend = get_backend()
    directory = Path(backend.directory)
    changed = DAMAGE[damage](directory)
    assert changed, f"nothing to damage in {sorted(p.name for p in directory.iterdir())}"
    # A fresh process (or a fresh reader here) meets the damage.
    backend._close_searcher()
    backend._decoded = None
    assert_search_down(client)

    new_id = web_publish(client, user.email, "洗箱费（索引损坏后）")
    assert_committed_and_chained(yard.id, new_id)
    if damage == "toc-removed":
        # No table of contents is no index: the first write builds one (a small registry).
        assert not backend.stale() and new_id in backend.live_item_ids()
    elif backend.stale():
        assert new_id in backend.pending.read()  # the failed write is recorded
    else:
        # A publish adding a new text writes a segment of its own and reads none of the
        # damaged ones: the write stands, and searching still reports the damage.
        assert damage.startswith("segments") and new_id in backend.live_item_ids()
        assert_search_down(client)

    run_reindex(runner)
    assert found_ids(client, "吊箱") == {first.id}
    assert found_ids(client, "洗箱") == {new_id}
    assert_index_matches_database()
    run_verify(runner)


# --- (c) an index write that fails --------------------------------------------------------


@pytest.fixture
def held_writer_lock(app, world):
    """Another process's writer holding the Whoosh lock past the site's timeout."""
    app.config["SEARCH_WRITER_TIMEOUT"] = 0.2
    backend = get_backend()
    backend.writer_timeout = 0.2
    ix = whoosh_index.open_dir(backend.directory, indexname="texts")
    lock = ix.lock("WRITELOCK")
    assert lock.acquire(blocking=False)
    yield lock
    lock.release()
    ix.close()


@pytest.mark.parametrize("recovery", ["next-write", "reindex"])
def test_failed_index_write_is_caught_up(client, runner, world, held_writer_lock, recovery, caplog):
    yard, user, first = world
    backend = get_backend()
    stuck_id = web_publish(client, user.email, "洗箱费（写索引失败）")
    assert_committed_and_chained(yard.id, stuck_id)
    assert "run `feereg reindex`" in caplog.text  # the failure is logged, not raised
    assert backend.stale() and backend.pending.read() == {stuck_id}
    assert stuck_id not in found_ids(client, "洗箱")  # searches still answer, one write behind

    held_writer_lock.release()
    if recovery == "next-write":
        later_id = web_publish(client, user.email, "熏蒸费（下一次写入）", fee_type="FUMIG")
        assert found_ids(client, "熏蒸") == {later_id}
    else:
        run_reindex(runner)
    assert found_ids(client, "洗箱") == {stuck_id}
    assert_index_matches_database()
    run_verify(runner)
    held_writer_lock.acquire(blocking=False)  # the fixture releases it


def test_a_change_committed_during_a_rebuild_is_not_lost(app, session, world, monkeypatch):
    """A rebuild reads the database, then swaps its directory in: a change committed in
    between was written to the old directory, and is indexed again after the swap."""
    yard, user, first = world
    backend = get_backend()
    build = backend._build
    late = {}

    def build_then_publish(target, progress):
        count = build(target, progress)
        # Another publisher commits while the rebuild is about to swap its directory in.
        late["id"] = publish(yard, user, fee_type="CLEAN", name_zh="洗箱费（重建期间）", unit="per_container",
                             amount="70").id
        session.commit()
        return count

    monkeypatch.setattr(backend, "_build", build_then_publish)
    backend.rebuild()
    assert late["id"] in backend.live_item_ids()
    assert_index_matches_database()


# --- (d) the database going away ------------------------------------------------------------


def _is_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def _admin_engine():
    from .conftest import PG_ADMIN_URL

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _terminate_backends(admin, name: str) -> int:
    with admin.connect() as conn:
        return len(conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).all())


@contextmanager
def database_down():
    """The registry's database refuses connections, and those open are cut: PostgreSQL
    stops accepting connections to it; SQLite's folder is moved away."""
    db.session.remove()
    url = db.engine.url
    if _is_postgres():
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS false'))
        # The pool keeps its connections, now dead: pool_pre_ping must notice them.
        _terminate_backends(admin, url.database)
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS true'))
            admin.dispose()
    else:
        db.engine.dispose()  # a SQLite connection keeps its open file whatever happens to the path
        folder = Path(url.database).parent
        away = folder.with_name(folder.name + ".away")
        folder.rename(away)
        try:
            yield
        finally:
            away.rename(folder)


def assert_database_down_page(response) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == 503, body[:500]
    assert "Traceback" not in body and "sqlalchemy" not in body.lower() and "psycopg" not in body.lower()


def _plain(row, *names):
    """The attributes a test needs, read while the database is there."""
    from types import SimpleNamespace

    return SimpleNamespace(**{name: getattr(row, name) for name in names})


def count_versions() -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(FeeItemVersion)).scalar_one()


def test_database_unreachable_answers_503_and_the_next_request_works(client, runner, world, caplog):
    yard, user, first = world
    yard, user, first = _plain(yard, "id"), _plain(user, "email"), _plain(first, "id")
    login(client, user.email)
    page = client.get("/publisher/items/new").get_data(as_text=True)
    from .conftest import CSRF_RE

    token = CSRF_RE.search(page).group(1)
    before = count_versions()
    with database_down():
        for lang, message in (("zh", DB_DOWN_ZH), ("en", DB_DOWN_EN)):
            for url in ("/firms", f"/items/{first.id}", "/publisher/"):
                response = client.get(url, query_string={"lang": lang})
                assert_database_down_page(response)
                assert message in response.get_data(as_text=True), url
        form = item_form(publish="y", fee_type="CLEAN", name_zh="洗箱费（数据库断开）", unit="per_container")
        response = client.post("/publisher/items/new?lang=en", data={**form, "csrf_token": token})
        assert_database_down_page(response)
    # Back: the pool's dead connections are noticed (pool_pre_ping) and replaced.
    assert client.get("/firms").status_code == 200
    assert count_versions() == before
    assert db.session.scalar(select(FeeItem).where(FeeItem.name_zh == "洗箱费（数据库断开）")) is None
    new_id = web_publish(client, user.email, "洗箱费（数据库恢复后）")
    assert_committed_and_chained(yard.id, new_id)
    assert found_ids(client, "洗箱") == {new_id}
    run_verify(runner)


def _cut_own_connection(session, versions) -> None:
    """An in-transaction hook that loses the publishing transaction's connection, as a
    database restart or a network cut would, after its rows were written."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.dispose()
    else:
        connection.connection.dbapi_connection.close()


def test_database_lost_in_the_middle_of_a_publish(client, runner, world, monkeypatch):
    yard, user, first = world
    head = yard.chain_head
    yard, user, first = _plain(yard, "id"), _plain(user, "email"), _plain(first, "id")
    before = count_versions()
    monkeypatch.setattr(hooks, "_in_transaction", [*hooks._in_transaction, _cut_own_connection])
    login(client, user.email)
    for lang, message in (("zh", DB_DOWN_ZH), ("en", DB_DOWN_EN)):
        form = item_form(publish="y", fee_type="CLEAN", name_zh=f"洗箱费（中途断开{lang}）", unit="per_container")
        from .conftest import csrf_token

        response = client.post(f"/publisher/items/new?lang={lang}",
                               data={**form, "csrf_token": csrf_token(client, "/publisher/items/new")})
        assert_database_down_page(response)
        assert message in response.get_data(as_text=True)
    monkeypatch.undo()
    # Nothing half-written: no item, no version, the chain head where it was.
    db.session.expire_all()
    assert count_versions() == before
    assert db.session.scalar(select(func.count()).select_from(FeeItem).where(FeeItem.name_zh.like("%中途断开%"))) == 0
    assert db.session.get(Firm, yard.id).chain_head == head
    assert not get_backend().stale()
    # The next request works, on a fresh connection.
    new_id = web_publish(client, user.email, "洗箱费（断开之后）")
    assert_committed_and_chained(yard.id, new_id)
    assert found_ids(client, "洗箱") == {new_id}
    run_verify(runner)


# --- (e) an import crashing half-way ----------------------------------------------------------


def import_rows(code: str, count: int, amount: int = 100) -> bytes:
    return csv_bytes([row(code, fee_code=f"IMP-{n:05d}", fee_type="DOC", name_zh="文件费",
                          amount=str(amount + n % 50), ports="YANTIAN") for n in range(count)])


def firm_counts(firm_id: int) -> tuple[int, int]:
    with db.engine.connect() as conn:
        items = conn.execute(select(func.count()).select_from(FeeItem).where(FeeItem.firm_id == firm_id)).scalar_one()
        versions = conn.execute(select(func.count()).select_from(FeeItemVersion)
                                .where(FeeItemVersion.firm_id == firm_id)).scalar_one()
    return items, versions


@pytest.fixture
def crash_on_nth_row(monkeypatch):
    """The registry service raises while writing the Nth row of a batch: rows before it
    are already flushed into the transaction."""
    calls = {"n": 0}
    append = registry._append_version

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("simulated crash in the middle of an import")
        return append(*args, **kwargs)

    monkeypatch.setattr(registry, "_append_version", failing)
    return calls


def test_an_import_crashing_half_way_on_the_site_writes_nothing(app, client, runner, world, crash_on_nth_row,
                                                                  monkeypatch, tmp_path):
    yard, user, first = world
    firm_id, code, email = yard.id, yard.credit_code, user.email
    before = firm_counts(firm_id)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: the error page, not the test's exception
    login(client, email)
    content = import_rows(code, 20)
    response = post_form(client, "/publisher/import", {"file": (io.BytesIO(content), "fees.csv")},
                         content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    preview_url = response.location
    page = client.get(preview_url).get_data(as_text=True)
    fingerprint = re.search(r'name="fingerprint"[^>]*value="([^"]+)"', page).group(1)
    token = re.search(r'name="token"[^>]*value="([^"]+)"', page).group(1)
    response = post_form(client, preview_url, {"token": token, "fingerprint": fingerprint, "confirm": "y",
                                               "effective_from": ""}, form_page=preview_url)
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and "Traceback" not in body
    assert "nothing was changed" in body or "未作任何更改" in body
    assert crash_on_nth_row["n"] == 7  # it did get half-way
    assert firm_counts(firm_id) == before
    run_verify(runner)

    monkeypatch.undo()  # the cause is gone: the same import succeeds
    db.session.rollback()
    result = runner.invoke(args=["import", str(_write(tmp_path / "fees.csv", content))])
    assert result.exit_code == 0, result.output
    assert firm_counts(firm_id) == (before[0] + 20, before[1] + 20)
    assert_committed_and_chained(firm_id, first.id)
    run_verify(runner)


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_an_import_crashing_half_way_from_the_command_line_writes_nothing(runner, world, crash_on_nth_row, monkeypatch,
                                                                        tmp_path):
    yard, user, first = world
    firm_id = yard.id
    before = firm_counts(firm_id)
    path = _write(tmp_path / "fees.csv", import_rows(yard.credit_code, 20))
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)
    assert crash_on_nth_row["n"] == 7
    db.session.rollback()  # what the dying process's connection does
    assert firm_counts(firm_id) == before
    run_verify(runner)
    monkeypatch.undo()
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code == 0, result.output
    assert firm_counts(firm_id) == (before[0] + 20, before[1] + 20)
    run_verify(runner)


def _import_writing(database_url: str, application_name: str) -> bool:
    """The import process has written rows into its (uncommitted) transaction."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        return any(Path(path + suffix).exists() and Path(path + suffix).stat().st_size > 0
                   for suffix in ("-journal", "-wal"))
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.relation = 'fee_item_version'::regclass AND l.mode = 'RowExclusiveLock' "
                "AND a.application_name = :app"), {"app": application_name}).scalar_one())
    finally:
        engine.dispose()


def test_an_import_killed_mid_way_leaves_nothing(app, runner, world, tmp_path):
    """A real `feereg import` process, killed with SIGKILL while its transaction is writing."""
    yard, user, first = world
    firm_id = yard.id
    before = firm_counts(firm_id)
    rows = 600  # a few seconds of writing: killed well before the end
    path = _write(tmp_path / "big.csv", import_rows(yard.credit_code, rows))
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    env = {**os.environ, "FEEREG_DATABASE_URL": url, "FEEREG_SECRET_KEY": "test-secret",
           "FEEREG_SEARCH_DIR": app.config["SEARCH_DIR"], "FEEREG_BULK_DIR": str(tmp_path / "bulk"),
           "FEEREG_PDF_CACHE_DIR": str(tmp_path / "pdf")}
    token = f"feereg-import-{os.getpid()}"
    if url.startswith("postgresql"):
        env["PGAPPNAME"] = token
    db.session.remove()
    db.engine.dispose()
    process = subprocess.Popen([str(Path(sys.executable).with_name("feereg")), "import", str(path)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not _import_writing(url, token):
            assert process.poll() is None, f"the import ended before it was killed: {process.communicate()}"
            assert time.monotonic() < deadline, "the import never started writing"
            time.sleep(0.02)
        time.sleep(0.3)  # well into its rows
        assert process.poll() is None, "the import finished before it was killed; give it more rows"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    if url.startswith("postgresql"):  # the server notices the dead client and rolls back
        admin = _admin_engine()
        deadline = time.monotonic() + 30
        while _backend_of(admin, token) and time.monotonic() < deadline:
            time.sleep(0.05)
        admin.dispose()
    assert firm_counts(firm_id) == before
    run_verify(runner)
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code == 0, result.output
    assert firm_counts(firm_id) == (before[0] + rows, before[1] + rows)
    run_verify(runner)


def _backend_of(admin, application_name: str) -> bool:
    with admin.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                                 {"a": application_name}).scalar_one())


def test_a_rebuild_killed_half_way_does_not_leave_writes_pending(client, world):
    """The marker of a rebuild whose process died is not taken for a rebuild in progress
    (every write would otherwise stay pending until the next rebuild)."""
    yard, user, first = world
    backend = get_backend()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    backend._rebuild_marker().write_text(str(dead.pid))
    new_id = web_publish(client, user.email, "洗箱费（重建中断之后）")
    assert not backend._rebuild_marker().exists()
    assert not backend.stale() and found_ids(client, "洗箱") == {new_id}
