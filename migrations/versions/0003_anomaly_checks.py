"""anomaly flags, policy notices, complaints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

The audit half of issue 4: flags raised by the anomaly rules, the dated policy notices
they apply, and shippers' complaints.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('complaint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('firm_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('fee_name', sa.String(length=200), nullable=False),
    sa.Column('fee_type_code', sa.String(length=32), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('charged_on', sa.Date(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('firm_answer', sa.Text(), nullable=False),
    sa.Column('regulator_conclusion', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('forwarded_at', sa.DateTime(), nullable=True),
    sa.Column('answered_at', sa.DateTime(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['firm_id'], ['firm.id'], name=op.f('fk_complaint_firm_id_firm')),
    sa.ForeignKeyConstraint(['item_id'], ['fee_item.id'], name=op.f('fk_complaint_item_id_fee_item')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_complaint'))
    )
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.create_index('ix_complaint_firm_status', ['firm_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_complaint_status'), ['status'], unique=False)

    op.create_table('policy_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('fee_type_code', sa.String(length=32), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('container_size', sa.String(length=8), nullable=False),
    sa.Column('port', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('replaced_by', sa.String(length=32), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_policy_notice_created_by_id_user_account')),
    sa.ForeignKeyConstraint(['fee_type_code'], ['fee_type.code'], name=op.f('fk_policy_notice_fee_type_code_fee_type')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_notice'))
    )
    with op.batch_alter_table('policy_notice', schema=None) as batch_op:
        batch_op.create_index('ix_policy_notice_type_effective', ['fee_type_code', 'effective_from'], unique=False)

    op.create_table('flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('firm_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('complaint_id', sa.Integer(), nullable=True),
    sa.Column('fee_type_code', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=120), nullable=False),
    sa.Column('fingerprint', sa.String(length=200), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('firm_answer', sa.Text(), nullable=False),
    sa.Column('firm_answered_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['complaint_id'], ['complaint.id'], name=op.f('fk_flag_complaint_id_complaint')),
    sa.ForeignKeyConstraint(['firm_id'], ['firm.id'], name=op.f('fk_flag_firm_id_firm')),
    sa.ForeignKeyConstraint(['item_id'], ['fee_item.id'], name=op.f('fk_flag_item_id_fee_item')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user_account.id'], name=op.f('fk_flag_reviewer_id_user_account')),
    sa.ForeignKeyConstraint(['version_id'], ['fee_item_version.id'], name=op.f('fk_flag_version_id_fee_item_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag')),
    sa.UniqueConstraint('fingerprint', name=op.f('uq_flag_fingerprint'))
    )
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_complaint_id'), ['complaint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_fee_type_code'), ['fee_type_code'], unique=False)
        batch_op.create_index('ix_flag_firm_status', ['firm_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_flag_rule_status', ['rule', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_status'), ['status'], unique=False)
        batch_op.create_index('ix_flag_subject', ['rule', 'subject'], unique=False)



def downgrade():
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.drop_index('ix_flag_subject')
        batch_op.drop_index(batch_op.f('ix_flag_status'))
        batch_op.drop_index('ix_flag_rule_status')
        batch_op.drop_index(batch_op.f('ix_flag_item_id'))
        batch_op.drop_index('ix_flag_firm_status')
        batch_op.drop_index(batch_op.f('ix_flag_fee_type_code'))
        batch_op.drop_index(batch_op.f('ix_flag_created_at'))
        batch_op.drop_index(batch_op.f('ix_flag_complaint_id'))

    op.drop_table('flag')
    with op.batch_alter_table('policy_notice', schema=None) as batch_op:
        batch_op.drop_index('ix_policy_notice_type_effective')

    op.drop_table('policy_notice')
    with op.batch_alter_table('complaint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_complaint_status'))
        batch_op.drop_index(batch_op.f('ix_complaint_received_at'))
        batch_op.drop_index('ix_complaint_firm_status')

    op.drop_table('complaint')
