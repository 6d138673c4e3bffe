"""Change history: audit events, live changes, live requests, protected models.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

* ``audit_event``: append-only record of every change (who, when, what,
  the changed fields before and after); no foreign keys, so a deleted
  model keeps its events;
* ``live_change``: append-only; from each change's time on, its deployment
  (NULL: none) is its model's live one, until the model's next change;
* ``live_request``: requests to change a protected model's live deployment
  and their approval or rejection;
* ``model.require_approval``: a protected model changes its live
  deployment only through an approved request.

An existing database gets one change per live deployment, at its deploy
date, by ``unknown`` (nobody recorded who made it live).

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
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


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"], ["model.model_id"], name=f"fk_{table}_model_id_model",
        onupdate="CASCADE", ondelete="CASCADE",
    )  # fmt: skip


def upgrade() -> None:
    # A plain ADD COLUMN: batch mode would copy the model table on SQLite, and dropping the
    # old copy would cascade to every deployment (foreign keys are on).
    op.add_column("model", sa.Column("require_approval", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "audit_event",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        sa.Column("time", utc_datetime(), nullable=False),
        sa.Column("actor", ident(100), nullable=False),
        sa.Column("action", ident(64), nullable=False),
        sa.Column("entity", ident(32), nullable=False),
        sa.Column("entity_id", ident(255), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_event"),
        **MYSQL_TABLE,
    )  # fmt: skip
    op.create_index("ix_audit_event_model", "audit_event", ["model_id", "event_id"])
    op.create_index("ix_audit_event_actor", "audit_event", ["actor", "event_id"])
    op.create_index("ix_audit_event_action", "audit_event", ["action", "event_id"])
    op.create_index("ix_audit_event_time", "audit_event", ["time", "event_id"])
    op.create_table(
        "live_change",
        sa.Column("change_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("version", ident(64), nullable=True),
        sa.Column("time", utc_datetime(), nullable=False),
        sa.Column("actor", ident(100), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=True),
        sa.Column("approved_by", ident(100), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        _model_fk("live_change"),
        sa.PrimaryKeyConstraint("change_id", name="pk_live_change"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_live_change_model", "live_change", ["model_id", "time", "change_id"])
    op.create_table(
        "live_request",
        sa.Column("request_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("expected_live", sa.Integer(), nullable=True),
        sa.Column("requested_by", ident(100), nullable=False),
        sa.Column("requested_at", utc_datetime(), nullable=False),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by", ident(100), nullable=True),
        sa.Column("decided_at", utc_datetime(), nullable=True),
        sa.Column("decision_reason", sa.String(2000), nullable=True),
        _model_fk("live_request"),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployment.deployment_id"], name="fk_live_request_deployment_id_deployment",
            onupdate="CASCADE", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name="pk_live_request"),
        **MYSQL_TABLE,
    )  # fmt: skip
    op.create_index("ix_live_request_model", "live_request", ["model_id", "request_id"])
    op.create_index("ix_live_request_state", "live_request", ["state", "request_id"])
    _changes_for_live_deployments()


def _changes_for_live_deployments() -> None:
    deployment = sa.table(
        "deployment", sa.column("deployment_id"), sa.column("model_id"), sa.column("version"),
        sa.column("deploy_date"), sa.column("is_live", sa.Boolean()),
    )  # fmt: skip
    change = sa.table(
        "live_change", sa.column("model_id"), sa.column("deployment_id"), sa.column("version"),
        sa.column("time"), sa.column("actor"),
    )  # fmt: skip
    live = sa.select(
        deployment.c.model_id, deployment.c.deployment_id, deployment.c.version,
        deployment.c.deploy_date, sa.literal("unknown", sa.String()),
    ).where(deployment.c.is_live == sa.true())  # fmt: skip
    op.execute(
        change.insert().from_select(["model_id", "deployment_id", "version", "time", "actor"], live)
    )


def downgrade() -> None:
    op.drop_table("live_request")
    op.drop_table("live_change")
    op.drop_table("audit_event")
    # DROP COLUMN in place (SQLite >= 3.35), never by copying the table (see upgrade).
    op.execute("ALTER TABLE model DROP COLUMN require_approval")
