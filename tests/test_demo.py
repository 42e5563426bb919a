"""The demo generator: exact scale, valid chains, determinism, labelled data, planted cases;
the PostgreSQL COPY loader writes the registry the services write on SQLite."""
import hashlib
import json
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from feereg import create_app
from feereg.demo import generator
from feereg.demo.generator import DEMO_PASSWORD, generate
from feereg.extensions import db
from feereg.models import FeeItem, FeeItemVersion, FeeType, Firm, FirmPort, User
from feereg.services import accounts, history, registry

from .conftest import _empty_tables, _test_config, scratch_postgres

PLANTED_RULES = {"ABOLISHED", "OVER_CAP", "MARKUP", "PEER_OUTLIER", "NO_NOTICE", "STEEP_RISE", "DUPLICATE",
                 "MISPLACED", "INCOMPLETE"}


def _regenerate(session, seed):
    session.close()  # release the read transaction before the tables are emptied
    _empty_tables()
    generate(session, firms=50, items=260, seed=seed)
    session.commit()
    return session.execute(select(Firm.credit_code, Firm.chain_head).order_by(Firm.credit_code)).all()


def _count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_demo_has_exactly_the_asked_scale_and_intact_chains(session):
    report = generate(session, firms=120, items=700, seed=5)
    session.commit()
    assert (report.firms, report.items) == (120, 700)
    assert _count(session, Firm) == 120 and _count(session, FeeItem) == 700
    assert _count(session, FeeItemVersion) == report.versions > 700  # some items have history
    checked, problems = history.verify_all(session)
    assert checked == 120 and problems == []
    # Every category is present and every firm publishes something.
    assert len(session.scalars(select(Firm.category).distinct()).all()) == 10
    assert session.scalar(select(func.count(func.distinct(FeeItem.firm_id)))) == 120


def test_demo_is_labelled_synthetic(session):
    generate(session, firms=60, items=300, seed=5)
    session.commit()
    for firm in session.scalars(select(Firm)):
        assert firm.name_zh.endswith("（演示）") and firm.name_en.endswith("(demo)")
        assert firm.contact_email.endswith("@demo.feereg.example")


def test_same_seed_same_registry_hashes_included(app, session):
    first = _regenerate(session, 11)
    assert len(first) == 50
    assert _regenerate(session, 11) == first
    assert _regenerate(session, 12) != first
    session.close()


def test_planted_cases_cover_every_rule_and_ordinary_items_stay_regular(session, tmp_path):
    path = tmp_path / "planted.json"
    report = generate(session, firms=679, items=3751, seed=20261123, planted_path=str(path))
    session.commit()
    planted = json.loads(path.read_text(encoding="utf-8"))
    assert len(planted) == len(report.planted)
    assert set(Counter(p["rule"] for p in planted)) == PLANTED_RULES
    planted_keys = {(p["credit_code"], p["fee_code"]) for p in planted}
    # Planted items exist and are live.
    codes = {f.id: f.credit_code for f in session.scalars(select(Firm))}
    live = {(codes[i.firm_id], i.fee_code): i for i in session.scalars(select(FeeItem))}
    assert planted_keys <= set(live)

    catalog = {ft.code: ft for ft in session.scalars(select(FeeType))}
    categories = {f.id: f.category for f in session.scalars(select(Firm))}
    planted_firms = {p["credit_code"] for p in planted}
    for (code, fee_code), item in live.items():
        if code in planted_firms:
            continue
        fee_type = catalog[item.fee_type_code]
        # Ordinary firms charge only what their category may, nothing abolished, fully disclosed.
        assert categories[item.firm_id] in fee_type.charged_by_list, (code, fee_code)
        assert fee_type.abolished_from is None
        assert item.service_content and "详见" not in item.service_content
        if item.pricing_basis != "market":
            assert item.legal_basis
    # Ordinary price changes stay modest and are announced at least 30 days ahead.
    previous: dict[int, FeeItemVersion] = {}
    for version in session.scalars(select(FeeItemVersion).order_by(FeeItemVersion.item_id, FeeItemVersion.seq)):
        before = previous.get(version.item_id)
        previous[version.item_id] = version
        if before is None or codes[version.firm_id] in planted_firms:
            continue
        assert version.amount <= before.amount * Decimal("1.5")
        assert (version.effective_from - version.published_at.date()).days >= 30


def test_demo_logins_work(session):
    generate(session, firms=30, items=150, seed=3)
    session.commit()
    publisher = session.scalar(select(User).where(User.email == "publisher@demo.feereg"))
    assert publisher.role == "publisher" and publisher.firm.category == "shipping_line"
    for email in ("publisher@demo.feereg", "regulator@demo.feereg", "admin@demo.feereg"):
        assert accounts.authenticate(session, email, DEMO_PASSWORD).email == email


def test_cli_demo_loads_once(runner, session):
    result = runner.invoke(args=["demo", "--firms", "20", "--items", "80", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "20 firms, 80 items" in result.output
    again = runner.invoke(args=["demo", "--if-empty", "--items", "80"])
    assert again.exit_code == 0 and "nothing loaded" in again.output
    assert _count(session, FeeItem) == 80
    refused = runner.invoke(args=["demo", "--items", "80"])
    assert refused.exit_code != 0


# --- PostgreSQL (COPY) and SQLite (the services' bulk writers) load the same registry -----------

def _registry_digest(session) -> str:
    """SHA-256 over every firm, port, item and version as stored (ids, hashes and chain heads
    included; only the firms' load time left out), read back through the models' types."""
    def norm(value):
        if isinstance(value, Decimal):
            return str(value.quantize(Decimal("0.01")))
        if isinstance(value, (date, datetime)):
            return value.isoformat()
        return "" if value is None else str(value)

    digest = hashlib.sha256()
    firm_columns = [c for c in Firm.__table__.columns if c.name != "created_at"]
    for columns, order in ((firm_columns, Firm.id), (list(FirmPort.__table__.columns), FirmPort.port),
                           (list(FeeItem.__table__.columns), FeeItem.id),
                           (list(FeeItemVersion.__table__.columns), FeeItemVersion.id)):
        for row in session.execute(select(*columns).order_by(*([FirmPort.firm_id] if order is FirmPort.port
                                                                 else []), order)):
            digest.update("|".join(norm(v) for v in row).encode() + b"\n")
    return digest.hexdigest()


def _schema_objects(session) -> set:
    """Every constraint and index of the tables the loader fills, with its definition."""
    tables = ["firm", "firm_port", "fee_item", "fee_item_version"]
    constraints = session.execute(text(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = ANY(CAST(:t AS regclass[]))"), {"t": tables}).all()
    indexes = session.execute(text("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                   "WHERE tablename = ANY(:t)"), {"t": tables}).all()
    return {tuple(row) for row in constraints} | {tuple(row) for row in indexes}


@pytest.fixture
def fresh_postgres():
    """An empty PostgreSQL database of its own (the loader's COPY path), dropped afterwards."""
    with scratch_postgres("demo loader test") as url:
        yield url


def _fresh_app(url, tmp_path):
    from flask_migrate import upgrade

    app = create_app({**_test_config(url, tmp_path), "SEARCH_BACKEND": "null"})
    with app.app_context():
        upgrade()
    return app


def test_postgres_copy_load_is_the_sqlite_registry_and_keeps_schema_and_sequences(fresh_postgres, tmp_path):
    digests, planted = {}, {}
    for kind, url in (("sqlite", f"sqlite:///{tmp_path / 'demo.sqlite'}"), ("postgresql", fresh_postgres)):
        app = _fresh_app(url, tmp_path / kind)
        with app.app_context():
            if kind == "postgresql":
                schema_before = _schema_objects(db.session)
                db.session.rollback()
            report = generate(db.session, firms=45, items=320, seed=17)
            db.session.commit()
            assert (report.firms, report.items) == (45, 320) and report.versions > 320
            digests[kind] = _registry_digest(db.session)
            planted[kind] = [p.as_dict() for p in report.planted]
            verified = app.test_cli_runner().invoke(args=["verify"])
            assert verified.exit_code == 0 and "45 firm chains intact" in verified.output, verified.output
            if kind == "postgresql":
                # ANALYZE ran: the planner's row counts are the loaded ones (-1 = never analysed).
                assert db.session.execute(text(
                    "SELECT relname, reltuples::int FROM pg_class WHERE relname IN ('fee_item', 'fee_item_version') "
                    "ORDER BY relname")).all() == [("fee_item", 320), ("fee_item_version", report.versions)]
                # The foreign keys dropped for the COPY are back, with the same definitions.
                assert _schema_objects(db.session) == schema_before
                # The sequences moved past the copied ids: a new item and its version get fresh ids.
                top_item = db.session.scalar(select(func.max(FeeItem.id)))
                top_version = db.session.scalar(select(func.max(FeeItemVersion.id)))
                admin = User(id=None, email="t@localhost", role="admin", password_hash="!")
                firm = db.session.scalars(select(Firm).order_by(Firm.id)).first()
                values = {**db.session.scalars(select(FeeItem).where(FeeItem.firm_id == firm.id))
                          .first().published_values(), "fee_code": "NEW-1"}
                item = registry.create_draft(db.session, firm, values, admin)
                version = registry.publish_item(db.session, item, admin, registry.today() + timedelta(days=40))
                db.session.commit()
                assert (item.id, version.id) == (top_item + 1, top_version + 1)
                assert history.verify_firm(db.session, firm) == []
            db.session.remove()
            db.engine.dispose()
    assert digests["postgresql"] == digests["sqlite"]
    assert planted["postgresql"] == planted["sqlite"]


def test_a_failed_postgres_load_leaves_the_schema_as_it_was(fresh_postgres, tmp_path, monkeypatch):
    app = _fresh_app(fresh_postgres, tmp_path)
    monkeypatch.setattr(generator, "BATCH_ITEMS", 60)  # several batches in a small registry
    with app.app_context():
        schema_before = _schema_objects(db.session)
        db.session.rollback()
        written = []

        def fail_after_first_batch(n):
            written.append(n)
            raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError):
            generate(db.session, firms=30, items=200, seed=3, progress=fail_after_first_batch)
        db.session.rollback()
        assert written and _schema_objects(db.session) == schema_before
        assert db.session.scalar(select(func.count()).select_from(FeeItem)) == 0
        # And a load after it works: the database was left usable.
        generate(db.session, firms=30, items=200, seed=3)
        db.session.commit()
        assert history.verify_all(db.session)[1] == []
        db.session.remove()
        db.engine.dispose()


def test_postgres_copy_load_hashes_with_the_credit_code_as_stored(fresh_postgres, tmp_path, monkeypatch):
    # A code given in lower case is stored normalised; the chain must be hashed with that,
    # or `feereg verify` finds every version of the firm tampered with.
    from feereg.demo import generator

    made = generator.credit_code.make
    monkeypatch.setattr(generator.credit_code, "make", lambda prefix: made(prefix).lower())
    app = _fresh_app(fresh_postgres, tmp_path)
    with app.app_context():
        generate(db.session, firms=6, items=30, seed=5)
        db.session.commit()
        codes = db.session.scalars(select(Firm.credit_code)).all()
        assert codes and all(code == code.upper() for code in codes)
        verified = app.test_cli_runner().invoke(args=["verify"])
        assert verified.exit_code == 0 and f"{len(codes)} firm chains intact" in verified.output, verified.output
        db.session.remove()
        db.engine.dispose()
