"""Initial registry schema: model, deployment, project, flow, flow_of_flows.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Self-contained on purpose: a migration must keep producing the same schema
however the ORM module changes later.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
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


def upgrade() -> None:
    op.create_table(
        "model",
        sa.Column("model_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("author", ident(100), nullable=False),
        sa.Column("laboratory", ident(100), nullable=False),
        sa.Column("facility", ident(100), nullable=False),
        sa.Column("beampath", ident(100), nullable=False),
        sa.Column("description", ident(255), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_model"),
        sa.UniqueConstraint(
            "author", "laboratory", "facility", "beampath", "description", name="_model_entry"
        ),
        **MYSQL_TABLE,
    )
    op.create_table(
        "project",
        sa.Column("project_name", ident(100), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.PrimaryKeyConstraint("project_name", name="pk_project"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "deployment",
        sa.Column("deployment_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", ident(64), nullable=False),
        sa.Column("deploy_date", utc_datetime(), nullable=False),
        sa.Column("package_import_name", sa.String(255), nullable=False),
        sa.Column("asset_dir", sa.String(1024), nullable=True),
        sa.Column("source", sa.String(2048), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("image", sa.String(512), nullable=True),
        sa.Column("is_live", sa.Boolean(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["model.model_id"],
            name="fk_deployment_model_id_model",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_deployment"),
        sa.UniqueConstraint("model_id", "version", name="_deployment_unique"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_deployment_model_date", "deployment", ["model_id", "deploy_date", "deployment_id"])
    op.create_index("ix_deployment_model_live", "deployment", ["model_id", "is_live"])
    op.create_index("ix_deployment_sha256", "deployment", ["sha256"])
    op.create_table(
        "flow",
        sa.Column("flow_id", ident(255), nullable=False),
        sa.Column("flow_name", sa.String(255), nullable=False),
        sa.Column("project_name", ident(100), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("composite", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployment.deployment_id"],
            name="fk_flow_deployment_id_deployment",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_name"],
            ["project.project_name"],
            name="fk_flow_project_name_project",
            onupdate="CASCADE",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("flow_id", name="pk_flow"),
        sa.UniqueConstraint("deployment_id", name="uq_flow_deployment_id"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_flow_project", "flow", ["project_name", "flow_id"])
    op.create_table(
        "flow_of_flows",
        sa.Column("_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("parent_flow_id", ident(255), nullable=False),
        sa.Column("flow_id", ident(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("mapped_parameters", sa.JSON(), nullable=True),
        sa.CheckConstraint("position >= 1", name=op.f("ck_flow_of_flows_position_positive")),
        sa.ForeignKeyConstraint(
            ["flow_id"],
            ["flow.flow_id"],
            name="fk_flow_of_flows_flow_id_flow",
            onupdate="CASCADE",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_flow_id"],
            ["flow.flow_id"],
            name="fk_flow_of_flows_parent_flow_id_flow",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("_id", name="pk_flow_of_flows"),
        sa.UniqueConstraint("parent_flow_id", "position", name="_flow_of_flows_position"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_flow_of_flows_flow", "flow_of_flows", ["flow_id"])


def downgrade() -> None:
    op.drop_table("flow_of_flows")
    op.drop_table("flow")
    op.drop_table("deployment")
    op.drop_table("project")
    op.drop_table("model")
