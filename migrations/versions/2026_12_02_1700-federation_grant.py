"""Federation: single-use sign-in states and handoff codes, shared by every instance.

Revision ID: f3d1e0a7c214
Revises: 9b1f3c2d4e5a
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f3d1e0a7c214"
down_revision = "9b1f3c2d4e5a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_grant",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_federation_grant")),
    )
    with op.batch_alter_table("federation_grant", schema=None) as batch_op:
        batch_op.create_index("ix_federation_grant_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("federation_grant", schema=None) as batch_op:
        batch_op.drop_index("ix_federation_grant_expires_at")
    op.drop_table("federation_grant")
