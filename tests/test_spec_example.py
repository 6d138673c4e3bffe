"""The spec's Python example runs unchanged, twice in a row, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy.engine import make_url

from lume_services import migrations
from lume_services.services.models.db.db import ModelDB, ModelDBConfig

SNIPPET = textwrap.dedent(
    """
    from lume_services.models import Model
    from lume_services import config
    config.configure()
    model = Model.create_model(
    author = "Jackie Garrahan",
    laboratory = "slac",
    facility = "lcls",
    beampath = "cu_hxr",
    description = "test_model"
    )
    model_db_service = config.context.model_db_service()
    project_name = model_db_service.store_project(
    project_name="test", description="my_description"
    )
    print(model.model_id, project_name, model.deployments)
    """
)


def run_snippet(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("LUME_")}
    env.update(extra)
    return env


def test_embedded_sqlite_twice(tmp_path):
    env = clean_env(LUME_HOME=str(tmp_path / "home"))
    assert run_snippet(env) == run_snippet(env) == "1 test []"
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [
        "registry.db",
        "registry.db.migrate.lock",
    ]


@pytest.mark.parametrize("dialect", ["mariadb", "postgresql"])
def test_server_database_from_predecessor_variables_twice(dialect, fresh_db_url, tmp_path):
    url = make_url(fresh_db_url(dialect))
    db = ModelDB(ModelDBConfig(url=url.render_as_string(hide_password=False)))
    migrations.upgrade(db)  # what `lume-services db upgrade` does
    db.dispose()
    env = clean_env(
        LUME_HOME=str(tmp_path / "home"),
        LUME_MODEL_DB__HOST=url.host,
        LUME_MODEL_DB__PORT=str(url.port),
        LUME_MODEL_DB__USER=url.username,
        LUME_MODEL_DB__PASSWORD=url.password,
        LUME_MODEL_DB__DATABASE=url.database,
    )
    if dialect == "postgresql":
        env["LUME_MODEL_DB__DIALECT_STR"] = "postgresql+psycopg"
    first = run_snippet(env)
    assert run_snippet(env) == first
    assert first.endswith(" test []")
    assert not (tmp_path / "home").exists()  # a server registry writes nothing locally
