"""The initial schema: libraries, scan_jobs, media_files, library_leases, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from scanguard.store.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PathType = sa.String(4096).with_variant(sa.String(4096, collation="C"), "postgresql")
ACTIVE = sa.text("status IN ('pending', 'running', 'paused')")


def upgrade() -> None:
    op.create_table(
        "libraries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, server_default="mixed"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("path", name="uq_libraries_path"),
    )
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "library_id",
            sa.Integer,
            sa.ForeignKey("libraries.id", ondelete="CASCADE", name="fk_scan_jobs_library_id_libraries"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("files_found", sa.Integer, nullable=False, server_default="0"),
        sa.Column("files_processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("files_skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("files_removed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("files_changed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("bytes_processed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_estimate", sa.Integer, nullable=True),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("checkpoint", PathType, nullable=True),
        sa.Column("skip_reasons", sa.JSON, nullable=True),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("fencing_token", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("restarts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("pause_reason", sa.String(255), nullable=True),
        sa.Column("active_seconds", sa.Float, nullable=False, server_default="0"),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
    )
    op.create_index(
        "uq_scan_jobs_one_active_per_library",
        "scan_jobs",
        ["library_id"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )
    op.create_index("ix_scan_jobs_status", "scan_jobs", ["status"])
    op.create_table(
        "media_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "library_id",
            sa.Integer,
            sa.ForeignKey("libraries.id", ondelete="CASCADE", name="fk_media_files_library_id_libraries"),
            nullable=False,
        ),
        sa.Column(
            "scan_job_id",
            sa.Integer,
            sa.ForeignKey("scan_jobs.id", ondelete="SET NULL", name="fk_media_files_scan_job_id_scan_jobs"),
            nullable=True,
        ),
        sa.Column("path", PathType, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime", sa.Float, nullable=False),
        sa.Column("media_type", sa.String(16), nullable=False),
        sa.Column("quick_hash", sa.String(64), nullable=True),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("missing_since", UtcDateTime(), nullable=True),
        sa.Column("vanished_job_id", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("meta", sa.JSON, nullable=True),
        sa.UniqueConstraint("library_id", "path", name="uq_media_files_library_id_path"),
    )
    op.create_index("ix_media_files_scan_job_id", "media_files", ["scan_job_id"])
    op.create_index("ix_media_files_vanished_job_id", "media_files", ["vanished_job_id"])
    op.create_table(
        "library_leases",
        sa.Column(
            "library_id",
            sa.Integer,
            sa.ForeignKey("libraries.id", ondelete="CASCADE", name="fk_library_leases_library_id_libraries"),
            primary_key=True,
        ),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("library_id", sa.Integer, nullable=True),
        sa.Column("job_id", sa.Integer, nullable=True),
        sa.Column("instance", sa.String(255), nullable=True),
        sa.Column("data", sa.JSON, nullable=True),
    )
    for column in ("job_id", "library_id", "kind", "at"):
        op.create_index(f"ix_events_{column}", "events", [column])


def downgrade() -> None:
    for table in ("events", "library_leases", "media_files", "scan_jobs", "libraries"):
        op.drop_table(table)
