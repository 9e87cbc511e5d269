"""report counters (outcomes and pick-up times per language and ISO week) and portal roles

Revision ID: 0007
Revises: 0006
Create Date: 2027-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outcome_counts',
    sa.Column('campaign', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('iso_week', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('campaign', 'language', 'iso_week', 'outcome')
    )
    op.create_table('pickup_times',
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('iso_week', sa.String(length=8), nullable=False),
    sa.Column('bucket', sa.String(length=16), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('language', 'iso_week', 'bucket')
    )
    with op.batch_alter_table('advocates') as batch:
        batch.add_column(
            sa.Column('role', sa.String(length=16), nullable=False, server_default='advocate')
        )


def downgrade() -> None:
    with op.batch_alter_table('advocates') as batch:
        batch.drop_column('role')
    op.drop_table('pickup_times')
    op.drop_table('outcome_counts')
