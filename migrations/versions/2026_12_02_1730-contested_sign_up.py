"""Contested sign-ups: an address registered again before it was confirmed must set a new
password at confirmation (pre-account hijacking defence, issue 11).

Revision ID: c4a1e2d9b7f3
Revises: f3d1e0a7c214
Create Date: 2026-12-02 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c4a1e2d9b7f3"
down_revision = "f3d1e0a7c214"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contested_sign_up",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("contested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("email", name=op.f("pk_contested_sign_up")),
    )


def downgrade() -> None:
    op.drop_table("contested_sign_up")
