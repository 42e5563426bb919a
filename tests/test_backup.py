"""`feereg backup` and `feereg restore`: the whole registry round-trips exactly — SQLite to
SQLite, PostgreSQL to PostgreSQL, SQLite to PostgreSQL — and a damaged archive, a
database already in use or one at another schema revision is refused, changing nothing.
"""
from __future__ import annotations

import gzip
from contextlib import ExitStack
import json
from datetime import timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from feereg import create_app
from feereg.extensions import db
from feereg.models import FeeItemVersion, Firm
from feereg.search import get_backend
from feereg.services import api_tokens, backup, complaints, history, imports, registry

from .conftest import _test_config, scratch_postgres
from .factories import make_user, publish


# --- a registry to copy -------------------------------------------------------------------


@pytest.fixture
def registry_data(app, runner, session):
    """Every kind of row: the demo registry (firms, ports, users, items, history, flags,
    policy notices, audit), plus a complaint, an API token and a stashed upload (bytes)."""
    result = runner.invoke(args=["demo", "--firms", "8", "--items", "40", "--seed", "11"])
    assert result.exit_code == 0, result.output
    firm = session.scalar(select(Firm).order_by(Firm.id))
    publisher = make_user("publisher", firm)
    item = publish(firm, publisher, fee_type="LOLO", name_zh="吊箱费（备份）", unit="per_container", amount="123.45")
    registry.withdraw_item(session, item, publisher, registry.today() + timedelta(days=40), "停止收取")
    complaints.file_complaint(session, {"firm": firm, "fee_name": "换单费", "amount": "300",
                                        "charged_on": registry.today(), "description": "未公示的换单费"})
    api_tokens.create_token(session, make_user("regulator"), "weekly script")
    imports.stash_upload(session, publisher, "费用.csv", "credit_code,amount\n".encode("utf-8") + bytes(range(256)))
    session.commit()
    return firm


def table_rows(engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in backup.tables()}


def revision_of(engine) -> str:
    with engine.connect() as conn:
        return backup.schema_revision(conn)


# --- an empty, migrated database to restore into -----------------------------------------------


@pytest.fixture
def target(request, tmp_path, migrated):
    """A second registry, freshly migrated: SQLite, or PostgreSQL (a database of its own)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'restored.sqlite'}"
        else:
            url = stack.enter_context(scratch_postgres("restore target"))
        target_app = create_app(_test_config(url, tmp_path / "restored-instance"))
        with target_app.app_context():
            upgrade()
        yield target_app
        with target_app.app_context():
            db.session.remove()
            db.engine.dispose()


def run(target_app, *args):
    with target_app.app_context():
        result = target_app.test_cli_runner().invoke(args=list(args))
        db.session.remove()
    return result


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["sqlite", "postgresql"], indirect=True)
def test_round_trip_copies_every_row_exactly(app, runner, registry_data, target, tmp_path):
    archive = tmp_path / "registry.feereg.gz"
    result = runner.invoke(args=["backup", str(archive)])
    assert result.exit_code == 0, result.output
    assert "sha256" in result.output and archive.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # the temporary file renamed away
    source, source_revision = table_rows(db.engine), revision_of(db.engine)
    firm_id = registry_data.id  # read here: inside the target's context it would load through the target's engine
    assert all(source[name] for name in ("firm", "fee_item", "fee_item_version", "flag", "complaint", "api_token",
                                         "pending_import", "audit_event", "user_account", "firm_port"))

    result = run(target, "restore", str(archive))
    assert result.exit_code == 0, result.output
    assert "firm chains intact" in result.output and "reindex:" in result.output
    with target.app_context():
        assert table_rows(db.engine) == source
        assert revision_of(db.engine) == source_revision
        # The restored registry works: search finds a restored item, and a new publish takes
        # fresh ids (PostgreSQL's sequences were moved past the restored ones) and extends the chain.
        backend = get_backend()
        live = set(db.session.scalars(select(FeeItemVersion.item_id).where(
            history.in_force_on(registry.today()), FeeItemVersion.kind == "publish")))
        assert backend.live_item_ids() == live and len(live) > 40
        firm = db.session.get(Firm, firm_id)
        user = make_user("publisher", firm)
        new = publish(firm, user, fee_type="CLEAN", name_zh="洗箱费（恢复后）", unit="per_container", amount="50")
        db.session.commit()
        assert new.id > max(row[0] for row in source["fee_item"])
        head = db.session.scalar(select(FeeItemVersion).where(FeeItemVersion.item_id == new.id))
        assert head.seq == max(r.seq for r in db.session.scalars(select(FeeItemVersion).where(
            FeeItemVersion.firm_id == firm.id)))
        db.session.remove()
    assert run(target, "verify").exit_code == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_the_archive_names_its_schema_revision_counts_and_hashes(app, runner, registry_data, target, tmp_path):
    archive = tmp_path / "registry.feereg.gz"
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    lines = gzip.decompress(archive.read_bytes()).splitlines()
    header, trailer = json.loads(lines[0]), json.loads(lines[-1])
    assert header["format"] == "feereg-backup" and header["alembic_revision"] == revision_of(db.engine)
    counts = {name: len(rows) for name, rows in table_rows(db.engine).items()}
    assert {name: entry["rows"] for name, entry in trailer["manifest"].items()} == counts
    import hashlib

    assert trailer["sha256"] == hashlib.sha256(b"".join(line + b"\n" for line in lines[:-1])).hexdigest()


# --- refusals: nothing changed ---------------------------------------------------------------


def _rewrite(archive: Path, change) -> None:
    lines = gzip.decompress(archive.read_bytes()).splitlines(keepends=True)
    archive.write_bytes(gzip.compress(b"".join(change(lines))))


DAMAGE = {
    "truncated": lambda a: a.write_bytes(a.read_bytes()[: a.stat().st_size // 2]),
    "byte-flipped": lambda a: a.write_bytes(_flip(a.read_bytes())),
    "row-edited": lambda a: _rewrite(a, lambda lines: [l.replace(b'"$decimal":"123.45"', b'"$decimal":"12.45"')
                                                       for l in lines]),
    "row-dropped": lambda a: _rewrite(a, lambda lines: lines[:3] + lines[4:]),
    "manifest-lost": lambda a: _rewrite(a, lambda lines: lines[:-1]),
    "not-gzip": lambda a: a.write_bytes(b"firm,amount\n1,2\n"),
    "empty": lambda a: a.write_bytes(gzip.compress(b"")),
}


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_damaged_archive_is_refused_and_changes_nothing(app, runner, registry_data, target, tmp_path):
    good = tmp_path / "registry.feereg.gz"
    assert runner.invoke(args=["backup", str(good)]).exit_code == 0
    assert b'"$decimal":"123.45"' in gzip.decompress(good.read_bytes())  # what "row-edited" changes
    with target.app_context():
        before = table_rows(db.engine)
    for damage, spoil in sorted(DAMAGE.items()):
        archive = tmp_path / f"{damage}.feereg.gz"
        archive.write_bytes(good.read_bytes())
        spoil(archive)
        result = run(target, "restore", str(archive))
        assert result.exit_code != 0, damage
        assert "nothing was changed" in result.output and "Traceback" not in result.output, (damage, result.output)
        with target.app_context():
            assert table_rows(db.engine) == before, damage


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", ["sqlite", "postgresql"], indirect=True)
def test_a_restore_failing_half_way_changes_nothing(app, runner, registry_data, target, tmp_path, monkeypatch):
    archive = tmp_path / "registry.feereg.gz"
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    insert, calls = backup._insert, {"n": 0}

    def failing(conn, table, batch, progress):
        calls["n"] += 1
        if table.name == "fee_item_version":
            raise RuntimeError("the disk filled up")
        insert(conn, table, batch, progress)

    monkeypatch.setattr(backup, "_insert", failing)
    with target.app_context():
        before = table_rows(db.engine)
    result = run(target, "restore", str(archive))
    assert result.exit_code != 0 and calls["n"] > 3  # firms, items and more were written, then rolled back
    with target.app_context():
        assert table_rows(db.engine) == before
    monkeypatch.undo()
    assert run(target, "restore", str(archive)).exit_code == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_a_registry_in_use_is_refused_unless_forced(app, runner, registry_data, target, tmp_path):
    archive = tmp_path / "registry.feereg.gz"
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    source = table_rows(db.engine)
    assert run(target, "restore", str(archive)).exit_code == 0
    with target.app_context():
        firm = db.session.scalar(select(Firm).order_by(Firm.id))
        publish(firm, make_user("publisher", firm), fee_type="CLEAN", name_zh="洗箱费（之后）", unit="per_container")
        db.session.commit()
        changed = table_rows(db.engine)
        db.session.remove()
    result = run(target, "restore", str(archive))
    assert result.exit_code != 0 and "not empty" in result.output and "--force" in result.output
    with target.app_context():
        assert table_rows(db.engine) == changed
    result = run(target, "restore", "--force", str(archive))
    assert result.exit_code == 0, result.output
    with target.app_context():
        assert table_rows(db.engine) == source


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("target", ["sqlite"], indirect=True)
def test_an_archive_of_another_schema_revision_is_refused(app, runner, registry_data, target, tmp_path, monkeypatch):
    archive = tmp_path / "old.feereg.gz"
    monkeypatch.setattr(backup, "schema_revision", lambda conn: "0001_registry_core")
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    monkeypatch.undo()
    result = run(target, "restore", str(archive))
    assert result.exit_code != 0 and "0001_registry_core" in result.output and "nothing was changed" in result.output
    with target.app_context():
        assert db.session.scalar(select(func.count()).select_from(Firm)) == 0


def test_a_failed_backup_leaves_no_file_and_keeps_the_previous_one(app, runner, registry_data, tmp_path, monkeypatch):
    archive = tmp_path / "registry.feereg.gz"
    assert runner.invoke(args=["backup", str(archive)]).exit_code == 0
    previous = archive.read_bytes()
    encode, calls = backup._encode, {"n": 0}

    def failing(value):
        calls["n"] += 1
        if calls["n"] == 500:
            raise OSError("disk full")
        return encode(value)

    monkeypatch.setattr(backup, "_encode", failing)
    result = runner.invoke(args=["backup", str(archive)])
    assert result.exit_code != 0 and calls["n"] == 500
    assert archive.read_bytes() == previous
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
