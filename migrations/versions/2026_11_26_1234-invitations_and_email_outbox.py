"""Invitations ledger (one pending invitation per email) and the transactional email outbox.

Revision ID: 6f3a8acc6589
Revises: 7421f2f02f17
Create Date: 2026-11-26 12:34:13.171051
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "6f3a8acc6589"
down_revision = "7421f2f02f17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_outbox")),
    )
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_email_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "invitation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("given_name", sa.String(length=256), nullable=True),
        sa.Column("family_name", sa.String(length=256), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_sub", sa.String(length=128), nullable=True),
        sa.Column("claim_id", sa.Uuid(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitation_token_hash")),
    )
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.create_index("ix_invitation_created_at_id", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_invitation_status_claimed_until", ["status", "claimed_until"], unique=False
        )
        batch_op.create_index(
            "uq_invitation_email_pending",
            ["email"],
            unique=True,
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invitation_email_pending",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        )
        batch_op.drop_index("ix_invitation_status_claimed_until")
        batch_op.drop_index("ix_invitation_created_at_id")

    op.drop_table("invitation")
    with op.batch_alter_table("email_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_email_outbox_status_next_attempt_at")

    op.drop_table("email_outbox")
