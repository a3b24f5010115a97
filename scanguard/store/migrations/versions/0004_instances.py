"""Several instances: each running process has a row, renewed on its ticks; on PostgreSQL every committed
event is announced with NOTIFY scanguard_events, its id as the payload (DESIGN §8).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from scanguard.store.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_instances_heartbeat_at", "instances", ["heartbeat_at"])
    if op.get_bind().dialect.name == "postgresql":
        # NOTIFY is transactional: listeners hear of an event when, and only if, it commits
        op.execute(
            "CREATE FUNCTION scanguard_notify_event() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_notify('scanguard_events', NEW.id::text); RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER scanguard_events_notify AFTER INSERT ON events "
            "FOR EACH ROW EXECUTE FUNCTION scanguard_notify_event()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS scanguard_events_notify ON events")
        op.execute("DROP FUNCTION IF EXISTS scanguard_notify_event()")
    op.drop_index("ix_instances_heartbeat_at", table_name="instances")
    op.drop_table("instances")
