"""durable inbox, outbox and send gaps

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('update_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('chat_key', sa.String(length=64), nullable=False),
    sa.Column('lane', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('update_id')
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbox_chat_key'), ['chat_key'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('chat_key', sa.String(length=64), nullable=False),
    sa.Column('lane', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=32), nullable=True),
    sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_chat', ['chat_key', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_claimed_until'), ['claimed_until'], unique=False)

    op.create_table('send_gaps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('chat_key', sa.String(length=64), nullable=False),
    sa.Column('after_id', sa.BigInteger(), nullable=False),
    sa.Column('before_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('send_gaps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_send_gaps_chat_key'), ['chat_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_send_gaps_created_at'), ['created_at'], unique=False)

    op.create_table('send_budget',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('tat', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('send_budget')
    with op.batch_alter_table('send_gaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_send_gaps_created_at'))
        batch_op.drop_index(batch_op.f('ix_send_gaps_chat_key'))
    op.drop_table('send_gaps')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_claimed_until'))
        batch_op.drop_index('ix_outbox_chat')
    op.drop_table('outbox')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_chat_key'))
    op.drop_table('inbox')
