"""Revocations carry when they were written (recorded_at_us): instances poll on that, so a
revocation held in memory through a database outage and written late is still seen.

Revision ID: 9b1f3c2d4e5a
Revises: 333efada7a5e
Create Date: 2026-11-26 14:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "9b1f3c2d4e5a"
down_revision = "333efada7a5e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("token_revocation", schema=None) as batch_op:
        # A server default: during a rolling deploy, tasks still running the previous release
        # insert rows without this column (they then read as 0, and are found by their
        # revoked_at_us instead).
        batch_op.add_column(
            sa.Column("recorded_at_us", sa.BigInteger(), nullable=True, server_default="0")
        )
    op.execute("UPDATE token_revocation SET recorded_at_us = revoked_at_us")
    with op.batch_alter_table("token_revocation", schema=None) as batch_op:
        batch_op.alter_column(
            "recorded_at_us", existing_type=sa.BigInteger(), nullable=False, server_default="0"
        )
        batch_op.create_index(
            "ix_token_revocation_recorded_at_us", ["recorded_at_us"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("token_revocation", schema=None) as batch_op:
        batch_op.drop_index("ix_token_revocation_recorded_at_us")
        batch_op.drop_column("recorded_at_us")
