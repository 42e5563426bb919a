"""seed the standard fee catalog

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

The catalog is reference data the application ships (feereg/data/fee_catalog.csv);
`feereg catalog load` brings an existing database up to a newer copy of the file.
"""
import csv
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CATALOG = Path(__file__).resolve().parents[2] / "feereg" / "data" / "fee_catalog.csv"

fee_type = sa.table(
    "fee_type",
    sa.column("code", sa.String), sa.column("name_zh", sa.String), sa.column("name_en", sa.String),
    sa.column("aliases", sa.Text), sa.column("group", sa.String), sa.column("unit", sa.String),
    sa.column("pricing_basis", sa.String), sa.column("pass_through", sa.Boolean),
    sa.column("charged_by", sa.Text), sa.column("abolished_from", sa.Date),
    sa.column("replaced_by", sa.String), sa.column("policy_note", sa.Text),
)


def _rows():
    with open(CATALOG, encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            yield {
                "code": row["code"].strip(), "name_zh": row["name_zh"].strip(), "name_en": row["name_en"].strip(),
                "aliases": ";".join(a.strip() for a in row["aliases"].split(";") if a.strip()),
                "group": row["group"].strip(), "unit": row["unit"].strip(),
                "pricing_basis": row["pricing_basis"].strip() or "market",
                "pass_through": row["pass_through"].strip().lower() == "yes",
                "charged_by": ";".join(c.strip() for c in row["charged_by"].split(";") if c.strip()),
                "abolished_from": date.fromisoformat(row["abolished_from"]) if row["abolished_from"] else None,
                "replaced_by": row["replaced_by"].strip(), "policy_note": row["policy_note"].strip(),
            }


def upgrade():
    op.bulk_insert(fee_type, list(_rows()))


def downgrade():
    op.execute(fee_type.delete())
