"""removed requests: the keyed hash of a deleted request's reference number

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('removed_requests',
    sa.Column('reference_hash', sa.String(length=64), nullable=False),
    sa.Column('forget_after', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('reference_hash')
    )
    with op.batch_alter_table('removed_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_removed_requests_forget_after'), ['forget_after'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('removed_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_removed_requests_forget_after'))

    op.drop_table('removed_requests')
