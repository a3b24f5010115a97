"""Per-file work: a job remembers whether it retries failed files; failed files are found by an index.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_jobs") as batch:
        batch.add_column(sa.Column("retry_failed", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_index(
        "ix_media_files_failed",
        "media_files",
        ["library_id", "path"],
        sqlite_where=sa.text("error IS NOT NULL"),
        postgresql_where=sa.text("error IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_media_files_failed", table_name="media_files")
    with op.batch_alter_table("scan_jobs") as batch:
        batch.drop_column("retry_failed")
