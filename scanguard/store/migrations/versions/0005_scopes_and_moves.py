"""Scoped scans and moves: a job remembers its scope, what started it and how many files it moved; a file
remembers its device and inode (filled by the next scan of each row), found by an index (DESIGN §12).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_jobs") as batch:
        batch.add_column(sa.Column("scope", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("trigger", sa.String(16), nullable=False, server_default="user"))
        batch.add_column(sa.Column("files_moved", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("media_files") as batch:
        batch.add_column(sa.Column("device", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("inode", sa.BigInteger, nullable=True))
    op.create_index("ix_media_files_library_id_inode", "media_files", ["library_id", "inode"])


def downgrade() -> None:
    op.drop_index("ix_media_files_library_id_inode", table_name="media_files")
    with op.batch_alter_table("media_files") as batch:
        batch.drop_column("inode")
        batch.drop_column("device")
    with op.batch_alter_table("scan_jobs") as batch:
        batch.drop_column("files_moved")
        batch.drop_column("trigger")
        batch.drop_column("scope")
