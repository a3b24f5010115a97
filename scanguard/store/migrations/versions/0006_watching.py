"""Watching (DESIGN §12): a library's watch switch, its watcher's state and lease, and the changed paths
that wait for the next scoped job.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from scanguard.store.tables import PathType, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("libraries") as batch:
        batch.add_column(sa.Column("watch", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("watch_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("watch_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("watch_message", sa.Text, nullable=True))
        batch.add_column(sa.Column("watch_since", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("watch_owner", sa.String(255), nullable=True))
        batch.add_column(sa.Column("watch_expires_at", UtcDateTime(), nullable=True))
    op.create_table(
        "watch_pending",
        sa.Column(
            "library_id",
            sa.Integer,
            sa.ForeignKey("libraries.id", ondelete="CASCADE", name="fk_watch_pending_library_id_libraries"),
            nullable=False,
        ),
        sa.Column("path", PathType, nullable=False),
        sa.Column("since", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("library_id", "path", name="pk_watch_pending"),
    )


def downgrade() -> None:
    op.drop_table("watch_pending")
    with op.batch_alter_table("libraries") as batch:
        for name in ("watch_expires_at", "watch_owner", "watch_since", "watch_message", "watch_reason"):
            batch.drop_column(name)
        batch.drop_column("watch_state")
        batch.drop_column("watch")
