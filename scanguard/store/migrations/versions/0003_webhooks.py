"""Webhooks: a delivery cursor per webhook (claimed under a lease), dead deliveries, and each event's
transaction id on PostgreSQL, so that a cursor never passes an event whose transaction has not committed.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from scanguard.store.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_cursors",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cursor_tx", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("token", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("delivered", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failed_attempts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("dead", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_success_at", UtcDateTime(), nullable=True),
        sa.Column("last_failure_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_webhook_cursors"),
    )
    op.create_table(
        "webhook_dead_letters",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("webhook", sa.String(255), nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_dead_letters"),
    )
    op.create_index("ix_webhook_dead_letters_webhook", "webhook_dead_letters", ["webhook", "id"])
    bind = op.get_bind()
    with op.batch_alter_table("events") as batch:
        if bind.dialect.name == "postgresql":
            # the inserting transaction's id: deliveries read only transactions older than every open one
            batch.add_column(
                sa.Column(
                    "tx",
                    sa.BigInteger,
                    nullable=True,
                    server_default=sa.text("pg_current_xact_id()::text::bigint"),
                )
            )
        else:
            batch.add_column(sa.Column("tx", sa.BigInteger, nullable=True))
    op.create_index("ix_events_tx_id", "events", ["tx", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_tx_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("tx")
    op.drop_index("ix_webhook_dead_letters_webhook", table_name="webhook_dead_letters")
    op.drop_table("webhook_dead_letters")
    op.drop_table("webhook_cursors")
