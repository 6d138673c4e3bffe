"""Alembic environment for the model registry (driven by lume_services.migrations)."""

from alembic import context

from lume_services.services.models.db.schema import Base

target_metadata = Base.metadata
config = context.config


def _configure(**kwargs):
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        render_as_batch=True,  # SQLite alters tables by copying them
        **kwargs,
    )


if context.is_offline_mode():
    _configure(url=config.attributes["url"], literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
else:
    _configure(connection=config.attributes["connection"])
    with context.begin_transaction():
        context.run_migrations()
