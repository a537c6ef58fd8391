"""listing index and case officer tags

An officer's /cases reads only clear columns: `cases.has_exclusions` and the keyed tags in
`case_officer_tags`, with the index `ix_cases_listing`. Existing cases keep
`has_exclusions` NULL: relay decides those by decrypting, and indexes them as it does.
`ix_cases_scope_id` is a prefix of the new index and `ix_case_messages_case_id` of the
unique (case_id, seq) index: both are dropped.

Plain ALTER statements, never a batch table copy: on SQLite, dropping the old `cases`
table of a copy would run the ON DELETE CASCADE of every child row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_officer_tags",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"],
                                name=op.f("fk_case_officer_tags_case_id_cases"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "tag", name=op.f("pk_case_officer_tags")),
    )
    op.create_index(op.f("ix_case_officer_tags_tag"), "case_officer_tags", ["tag"],
                    unique=False)
    op.add_column("cases", sa.Column("has_exclusions", sa.Boolean(), nullable=True))
    op.create_index("ix_cases_listing", "cases",
                    ["scope_id", "status", "has_exclusions", "created_at"], unique=False)
    op.drop_index(op.f("ix_cases_scope_id"), table_name="cases")
    op.drop_index(op.f("ix_case_messages_case_id"), table_name="case_messages")


def downgrade() -> None:
    op.create_index(op.f("ix_case_messages_case_id"), "case_messages", ["case_id"],
                    unique=False)
    op.create_index(op.f("ix_cases_scope_id"), "cases", ["scope_id"], unique=False)
    op.drop_index("ix_cases_listing", table_name="cases")
    op.drop_column("cases", "has_exclusions")  # SQLite >= 3.35: a plain DROP COLUMN
    op.drop_index(op.f("ix_case_officer_tags_tag"), table_name="case_officer_tags")
    op.drop_table("case_officer_tags")
