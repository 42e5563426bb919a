"""compliance cases

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Firm compliance (issue 4): a regulator's case against a firm (warning → rectification with
a deadline → closed) and its steps.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('compliance_case',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('firm_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('opened_by_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['firm_id'], ['firm.id'], name=op.f('fk_compliance_case_firm_id_firm')),
    sa.ForeignKeyConstraint(['opened_by_id'], ['user_account.id'], name=op.f('fk_compliance_case_opened_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_case'))
    )
    with op.batch_alter_table('compliance_case', schema=None) as batch_op:
        batch_op.create_index('ix_compliance_case_firm_status', ['firm_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_case_status'), ['status'], unique=False)

    op.create_table('compliance_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_compliance_step_actor_id_user_account')),
    sa.ForeignKeyConstraint(['case_id'], ['compliance_case.id'], name=op.f('fk_compliance_step_case_id_compliance_case'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_step'))
    )
    with op.batch_alter_table('compliance_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_step_case_id'), ['case_id'], unique=False)



def downgrade():
    with op.batch_alter_table('compliance_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_step_case_id'))

    op.drop_table('compliance_step')
    with op.batch_alter_table('compliance_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_case_status'))
        batch_op.drop_index('ix_compliance_case_firm_status')

    op.drop_table('compliance_case')
