"""Deployment variables: a model's inputs and outputs, read from its package.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

* ``deployment_variables``: one row per deployment that declares variables
  (none for a package without a variables file): the archive member they
  were read from, its format, and the input and output variables as JSON
  lists in file order. Deleted with its deployment.

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "deployment_variables",
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("source_file", sa.String(1000), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployment.deployment_id"], name="fk_deployment_variables_deployment_id_deployment",
            onupdate="CASCADE", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment_id", name="pk_deployment_variables"),
        **MYSQL_TABLE,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("deployment_variables")
