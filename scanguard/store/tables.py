"""The schema of DESIGN §4 as SQLAlchemy Core tables (the migrations create it; nothing calls create_all)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


# relative paths compare byte-wise on both databases, so the walk order is the index order
PathType = sa.String(4096).with_variant(sa.String(4096, collation="C"), "postgresql")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite keeps them naive; we put the zone back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


Stamp = UtcDateTime()

libraries = sa.Table(
    "libraries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(4096), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="mixed"),
    sa.Column("created_at", Stamp, nullable=False),
    # watching (0006): the switch, then what its watcher last wrote and its lease (one watcher per library)
    sa.Column("watch", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("watch_state", sa.String(16), nullable=True),
    sa.Column("watch_reason", sa.String(64), nullable=True),
    sa.Column("watch_message", sa.Text, nullable=True),
    sa.Column("watch_since", Stamp, nullable=True),
    sa.Column("watch_owner", sa.String(255), nullable=True),
    sa.Column("watch_expires_at", Stamp, nullable=True),
    sa.UniqueConstraint("path"),
)

scan_jobs = sa.Table(
    "scan_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("library_id", sa.Integer, sa.ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False),
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
    sa.Column("heartbeat_at", Stamp, nullable=True),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("fencing_token", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("restarts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("pause_reason", sa.String(255), nullable=True),
    sa.Column("active_seconds", sa.Float, nullable=False, server_default="0"),
    sa.Column("retry_failed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("scope", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("trigger", sa.String(16), nullable=False, server_default="user"),
    sa.Column("files_moved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("started_at", Stamp, nullable=True),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.Column("finished_at", Stamp, nullable=True),
    sa.Index(
        "uq_scan_jobs_one_active_per_library",
        "library_id",
        unique=True,
        sqlite_where=sa.text("status IN ('pending', 'running', 'paused')"),
        postgresql_where=sa.text("status IN ('pending', 'running', 'paused')"),
    ),
    sa.Index("ix_scan_jobs_status", "status"),
)

media_files = sa.Table(
    "media_files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("library_id", sa.Integer, sa.ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("scan_job_id", sa.Integer, sa.ForeignKey("scan_jobs.id", ondelete="SET NULL"), nullable=True),
    sa.Column("path", PathType, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime", sa.Float, nullable=False),
    sa.Column("media_type", sa.String(16), nullable=False),
    sa.Column("quick_hash", sa.String(64), nullable=True),
    sa.Column("first_seen_at", Stamp, nullable=False),
    sa.Column("last_seen_at", Stamp, nullable=False),
    sa.Column("missing_since", Stamp, nullable=True),
    sa.Column("vanished_job_id", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("meta", sa.JSON, nullable=True),
    # the file's identity on disk (signed 64-bit), so that a move keeps its row; NULL until scanned again
    sa.Column("device", sa.BigInteger, nullable=True),
    sa.Column("inode", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("library_id", "path"),
    sa.Index("ix_media_files_library_id_inode", "library_id", "inode"),
    sa.Index("ix_media_files_scan_job_id", "scan_job_id"),
    # only the rows a running job marked vanished (all others are NULL): cheap to keep on every insert
    sa.Index(
        "ix_media_files_vanished_job_id",
        "vanished_job_id",
        sqlite_where=sa.text("vanished_job_id IS NOT NULL"),
        postgresql_where=sa.text("vanished_job_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_media_files_failed",
        "library_id",
        "path",
        sqlite_where=sa.text("error IS NOT NULL"),
        postgresql_where=sa.text("error IS NOT NULL"),
    ),
)

library_leases = sa.Table(
    "library_leases",
    metadata,
    sa.Column("library_id", sa.Integer, sa.ForeignKey("libraries.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("expires_at", Stamp, nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Stamp, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("library_id", sa.Integer, nullable=True),
    sa.Column("job_id", sa.Integer, nullable=True),
    sa.Column("instance", sa.String(255), nullable=True),
    sa.Column("data", sa.JSON, nullable=True),
    # PostgreSQL fills it with the inserting transaction's id (0003); NULL on SQLite, whose writes are serial
    sa.Column("tx", sa.BigInteger, nullable=True),
    sa.Index("ix_events_job_id", "job_id"),
    sa.Index("ix_events_library_id", "library_id"),
    sa.Index("ix_events_kind", "kind"),
    sa.Index("ix_events_at", "at"),
    sa.Index("ix_events_tx_id", "tx", "id"),
)

webhook_cursors = sa.Table(
    "webhook_cursors",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cursor_tx", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("owner", sa.String(255), nullable=True),
    sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("lease_expires_at", Stamp, nullable=True),
    sa.Column("delivered", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed_attempts", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("dead", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_success_at", Stamp, nullable=True),
    sa.Column("last_failure_at", Stamp, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", Stamp, nullable=False),
)

webhook_dead_letters = sa.Table(
    "webhook_dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("webhook", sa.String(255), nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("at", Stamp, nullable=False),
    sa.Index("ix_webhook_dead_letters_webhook", "webhook", "id"),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("started_at", Stamp, nullable=False),
    sa.Column("heartbeat_at", Stamp, nullable=False),
    sa.Index("ix_instances_heartbeat_at", "heartbeat_at"),
)

watch_pending = sa.Table(
    "watch_pending",
    metadata,
    sa.Column("library_id", sa.Integer, sa.ForeignKey("libraries.id", ondelete="CASCADE"), nullable=False),
    sa.Column("path", PathType, nullable=False),
    sa.Column("since", Stamp, nullable=False),
    sa.PrimaryKeyConstraint("library_id", "path"),
)
