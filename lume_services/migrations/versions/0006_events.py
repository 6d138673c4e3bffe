"""Events and webhooks: the feed's commit-order lock, webhooks, their deliveries and attempts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

* ``event_feed``: one row that writers of audit events lock first on
  MariaDB/PostgreSQL, so that event ids are assigned in commit order (a
  feed cursor never skips an event committed later);
* ``webhook``: a target URL, its signing secret, the event types (and
  model) it is sent, and the last event its deliveries were derived from;
* ``webhook_delivery``: one event for one webhook (queued, pending,
  delivered or dead), with its lease and the exact body sent;
* ``webhook_attempt``: every POST of a delivery (time, duration, status
  code or error).

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def ident(length: int) -> sa.types.TypeEngine:
    """Case-sensitive text on every dialect (binary collation on MySQL)."""
    variant = mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.String(length).with_variant(variant, "mysql").with_variant(variant, "mariadb")


def utc_datetime() -> sa.types.TypeEngine:
    """Naive UTC with microseconds (DATETIME(6) on MySQL)."""
    precise = mysql.DATETIME(fsp=6)
    return sa.DateTime().with_variant(precise, "mysql").with_variant(precise, "mariadb")


def big_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event_feed",
        sa.Column("feed_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("updated", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("feed_id", name="pk_event_feed"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "webhook",
        sa.Column("webhook_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(256), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("created_by", ident(100), nullable=False),
        sa.Column("cursor", big_id(), nullable=False),
        sa.PrimaryKeyConstraint("webhook_id", name="pk_webhook"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("delivery_id", big_id(), autoincrement=True, nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", big_id(), nullable=False),
        sa.Column("event_type", ident(64), nullable=False),
        sa.Column("model_key", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("next_attempt_at", utc_datetime(), nullable=False),
        sa.Column("claimed_until", utc_datetime(), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("finished", utc_datetime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("replay_of", big_id(), nullable=True),
        sa.Column("body", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql").with_variant(
            mysql.MEDIUMTEXT(), "mariadb"), nullable=False),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhook.webhook_id"], name="fk_webhook_delivery_webhook_id_webhook",
            onupdate="CASCADE", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_webhook_delivery"),
        **MYSQL_TABLE,
    )  # fmt: skip
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["state", "next_attempt_at"])
    op.create_index(
        "ix_webhook_delivery_group", "webhook_delivery", ["webhook_id", "model_key", "state", "delivery_id"]
    )
    op.create_index("ix_webhook_delivery_event", "webhook_delivery", ["event_id"])
    op.create_table(
        "webhook_attempt",
        sa.Column("attempt_id", big_id(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", big_id(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started", utc_datetime(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["webhook_delivery.delivery_id"],
            name="fk_webhook_attempt_delivery_id_webhook_delivery", onupdate="CASCADE", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("attempt_id", name="pk_webhook_attempt"),
        **MYSQL_TABLE,
    )  # fmt: skip
    op.create_index("ix_webhook_attempt_delivery", "webhook_attempt", ["delivery_id", "attempt"])


def downgrade() -> None:
    op.drop_table("webhook_attempt")
    op.drop_table("webhook_delivery")
    op.drop_table("webhook")
    op.drop_table("event_feed")
