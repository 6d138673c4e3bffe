"""Tags: key/value pairs on models and deployments.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

* ``model.tags`` / ``deployment.tags``: the tags as a JSON object (NULL:
  none), read with the row at no extra cost;
* ``model_tag`` / ``deployment_tag``: one row per tag with the SHA-256 of its
  value, kept in step by the write path, so that a filter ``tags={k: v}``
  reaches its rows through an index whatever the length of the values
  (MLflow allows 100,000 characters; no database indexes that much text).

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def ident(length: int) -> sa.types.TypeEngine:
    """Case-sensitive text on every dialect (binary collation on MySQL)."""
    variant = mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin")
    return sa.String(length).with_variant(variant, "mysql").with_variant(variant, "mariadb")


def _tag_table(table: str, owner: str, parent: str) -> None:
    op.create_table(
        table,
        sa.Column(owner, sa.Integer(), nullable=False),
        sa.Column("key", ident(250), nullable=False),
        sa.Column("value_sha256", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            [owner], [f"{parent}.{owner}"], name=f"fk_{table}_{owner}_{parent}", onupdate="CASCADE", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(owner, "key", name=f"pk_{table}"),
        **MYSQL_TABLE,
    )  # fmt: skip
    op.create_index(f"ix_{table}_lookup", table, ["key", "value_sha256", owner])


def upgrade() -> None:
    # Plain ADD COLUMN: batch mode would copy the tables on SQLite (see 0003).
    op.add_column("model", sa.Column("tags", sa.JSON(), nullable=True))
    op.add_column("deployment", sa.Column("tags", sa.JSON(), nullable=True))
    _tag_table("model_tag", "model_id", "model")
    _tag_table("deployment_tag", "deployment_id", "deployment")


def downgrade() -> None:
    op.drop_table("deployment_tag")
    op.drop_table("model_tag")
    # DROP COLUMN in place (SQLite >= 3.35), never by copying the table (see upgrade).
    op.execute("ALTER TABLE deployment DROP COLUMN tags")
    op.execute("ALTER TABLE model DROP COLUMN tags")
