"""The web UI's sessions: a browser's random session id (its sha256 only) and the token it signed in with.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Self-contained on purpose, like 0001.
"""

from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

MYSQL_TABLE = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def utc_datetime() -> sa.types.TypeEngine:
    """Naive UTC with microseconds (DATETIME(6) on MySQL)."""
    precise = mysql.DATETIME(fsp=6)
    return sa.DateTime().with_variant(precise, "mysql").with_variant(precise, "mariadb")


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("session_sha256", sa.String(64), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("created", utc_datetime(), nullable=False),
        sa.Column("expires", utc_datetime(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_token.token_id"], name="fk_web_session_token_id_api_token",
                                ondelete="CASCADE", onupdate="CASCADE"),
        sa.PrimaryKeyConstraint("session_sha256", name="pk_web_session"),
        **MYSQL_TABLE,
    )
    op.create_index("ix_web_session_expires", "web_session", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_web_session_expires", table_name="web_session")
    op.drop_table("web_session")
