"""The server's jobs (stores run by its job runners) and the record of every run submitted.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
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


def long_text() -> sa.types.TypeEngine:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql").with_variant(mysql.MEDIUMTEXT(), "mariadb")


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("job_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", ident(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", long_text(), nullable=True),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("error_attributes", sa.JSON(), nullable=True),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("started", utc_datetime(), nullable=True),
        sa.Column("finished", utc_datetime(), nullable=True),
        sa.Column("heartbeat", utc_datetime(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_job"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_job_state", "job", ["state", "job_id"])
    op.create_table(
        "flow_run",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prefect_run_id", sa.String(255), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("flow_id", ident(255), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("actor", ident(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", long_text(), nullable=True),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("finished", utc_datetime(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_flow_run"),
        sa.UniqueConstraint("prefect_run_id", name="uq_flow_run_prefect_run_id"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_flow_run_model", "flow_run", ["model_id", "run_id"])
    op.create_index("ix_flow_run_deployment", "flow_run", ["deployment_id", "run_id"])


def downgrade() -> None:
    op.drop_table("flow_run")
    op.drop_table("job")
