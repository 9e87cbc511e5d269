"""case notes: an advocate's notes on a request, HPKE-sealed to the organisation key

Revision ID: 0005
Revises: 0004
Create Date: 2027-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('case_notes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('request_id', sa.String(length=32), nullable=False),
    sa.Column('author_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('sealed', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['contact_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_notes_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_notes_request_id'))

    op.drop_table('case_notes')
