"""REST API tokens: name, scope, project, expiry and revocation (the token's sha256 only).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

``active_name`` is the name while the token is in use and NULL once it is
revoked: its unique index allows one token in use per name.

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
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
        "api_token",
        sa.Column("token_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", ident(100), nullable=False),
        sa.Column("active_name", ident(100), nullable=True),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("project_name", ident(100), nullable=True),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("created_by", ident(100), nullable=False),
        sa.Column("expires", utc_datetime(), nullable=True),
        sa.Column("revoked", utc_datetime(), nullable=True),
        sa.Column("revoked_by", ident(100), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write', 'admin')", name="ck_api_token_scope_known"),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_token"),
        sa.UniqueConstraint("active_name", name="uq_api_token_active_name"),
        sa.UniqueConstraint("token_sha256", name="uq_api_token_token_sha256"),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    op.drop_table("api_token")
