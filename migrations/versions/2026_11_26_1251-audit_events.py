"""The audit log: one row per security-relevant action, queried newest first.

Revision ID: 333efada7a5e
Revises: 6f3a8acc6589
Create Date: 2026-11-26 12:51:00.759610
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "333efada7a5e"
down_revision = "6f3a8acc6589"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=254), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_event_action_occurred_at", ["action", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_audit_event_actor_occurred_at", ["actor", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_audit_event_occurred_at_id", ["occurred_at", "id"], unique=False)
        batch_op.create_index(
            "ix_audit_event_target_occurred_at", ["target", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_target_occurred_at")
        batch_op.drop_index("ix_audit_event_occurred_at_id")
        batch_op.drop_index("ix_audit_event_actor_occurred_at")
        batch_op.drop_index("ix_audit_event_action_occurred_at")

    op.drop_table("audit_event")
