"""version superseded_from

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

"In force on D" as a range: fee_item_version.superseded_from is the effective date of the
version that follows each one in its item's (effective_from, seq) order, so a version is in
force on D when effective_from <= D < superseded_from (empty: open-ended). Derived from the
published rows, not published itself: the hash chain does not cover it. Existing rows are
backfilled with one correlated UPDATE that runs on SQLite and PostgreSQL alike.

No new index: the in-force test now reads only the row's own columns, and the candidates
are found through the existing indexes (fee type for a comparison, firm and effective date
for a quote). An index on (fee_type_code, effective_from, superseded_from) was tried at
100,000 items: SQLite then drove the quote's candidate query by fee type instead of by the
port's firms and it took three times as long.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('fee_item_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('superseded_from', sa.Date(), nullable=True))

    # The next version in (effective_from, seq) order starts at the smallest effective date
    # among the versions after this one.
    op.execute(
        "UPDATE fee_item_version SET superseded_from = ("
        " SELECT MIN(later.effective_from) FROM fee_item_version later"
        " WHERE later.item_id = fee_item_version.item_id"
        " AND (later.effective_from > fee_item_version.effective_from"
        " OR (later.effective_from = fee_item_version.effective_from AND later.seq > fee_item_version.seq)))"
    )


def downgrade():
    with op.batch_alter_table('fee_item_version', schema=None) as batch_op:
        batch_op.drop_column('superseded_from')
