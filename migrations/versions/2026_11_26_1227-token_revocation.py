"""Token revocation ledger: one revocation instant per user, and same-second allowances.

Revision ID: 7421f2f02f17
Revises:
Create Date: 2026-11-26 12:27:03.933740
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7421f2f02f17"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_allowance",
        sa.Column("jti", sa.String(length=128), nullable=False),
        sa.Column("sub", sa.String(length=128), nullable=False),
        sa.Column("issued_after_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_token_allowance")),
    )
    op.create_table(
        "token_revocation",
        sa.Column("sub", sa.String(length=128), nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sub", name=op.f("pk_token_revocation")),
    )
    with op.batch_alter_table("token_revocation", schema=None) as batch_op:
        batch_op.create_index("ix_token_revocation_revoked_at_us", ["revoked_at_us"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("token_revocation", schema=None) as batch_op:
        batch_op.drop_index("ix_token_revocation_revoked_at_us")

    op.drop_table("token_revocation")
    op.drop_table("token_allowance")
