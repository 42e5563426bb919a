"""The migrations build exactly the models' schema, and run down and up again."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, func

from feereg.demo.generator import generate
from feereg.extensions import db
from feereg.models import FeeItemVersion, FeeType
from feereg.services.catalog import read_catalog_file


def _differences():
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return compare_metadata(context, db.metadata)


def test_models_and_migrations_agree(app):
    assert _differences() == []


def test_catalog_is_seeded_by_the_migrations(app, session):
    codes = {row["code"] for row in read_catalog_file()}
    assert set(session.scalars(select(FeeType.code))) == codes
    doc = session.scalar(select(FeeType).where(FeeType.code == "DOC"))
    assert {"单证费", "DOC"} <= set(doc.alias_list)


def test_downgrade_to_base_and_upgrade_again(app, session):
    session.remove()
    downgrade(revision="base")
    tables = set(inspect(db.engine).get_table_names())
    assert tables <= {"alembic_version"}
    upgrade()
    assert "fee_item_version" in inspect(db.engine).get_table_names()
    assert _differences() == []
    assert db.session.scalar(select(func.count()).select_from(FeeType)) == len(read_catalog_file())


def test_the_superseded_from_backfill_matches_the_service(app, session):
    generate(session, firms=30, items=150, seed=3)
    session.commit()
    kept = dict(session.execute(select(FeeItemVersion.id, FeeItemVersion.superseded_from)).all())
    assert any(kept.values())
    session.remove()
    downgrade(revision="0004")
    upgrade()
    assert dict(db.session.execute(select(FeeItemVersion.id, FeeItemVersion.superseded_from)).all()) == kept
