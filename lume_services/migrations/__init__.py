"""Schema migrations of the model registry (Alembic), shipped in the package.

``upgrade`` / ``downgrade`` / ``current`` / ``head`` work on a
:class:`~lume_services.services.models.db.db.ModelDB`; ``render_sql`` renders
the upgrade as SQL for a dialect without a database (the docker-compose init
file is made this way, so it can never drift from the migrations).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from lume_services.services.models.db.db import ModelDB

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(**attributes: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes.update(attributes)
    return cfg


def head() -> str:
    head_rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head_rev is not None
    return head_rev


def current(model_db: ModelDB) -> Optional[str]:
    with model_db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(model_db: ModelDB, revision: str = "head") -> None:
    with model_db.engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), revision)


def downgrade(model_db: ModelDB, revision: str) -> None:
    with model_db.engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), revision)


def render_sql(dialect_url: str = "mysql+pymysql://", revision: str = "head") -> str:
    """The SQL of ``upgrade base:revision`` for a dialect, without a database."""
    out = io.StringIO()
    cfg = alembic_config(url=dialect_url)
    cfg.output_buffer = out
    command.upgrade(cfg, revision, sql=True)
    return out.getvalue()
