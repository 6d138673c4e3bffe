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


FULL_SNIPPET = textwrap.dedent(
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
    scheduling_service = config.context.scheduling_service()
    # create a project
    project_name = model_db_service.store_project(
    project_name="test", description="my_description"
    )
    scheduling_service.create_project("test")
    source_path = SOURCE_PATH
    # populates local channel
    model.store_deployment(source_path, project_name="test")
    d = model.deployments[-1]
    print(model.model_id, d.deployment_id, d.version, d.package_import_name, d.is_live, model.deployment.flow.flow_id)
    """
)


def run_full_snippet(env: dict[str, str], source: str) -> str:
    code = FULL_SNIPPET.replace("SOURCE_PATH", repr(source))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_full_example_embedded_with_ephemeral_prefect_twice(tmp_path):
    """Nothing to start by hand: embedded SQLite and Prefect's ephemeral mode in LUME_HOME."""
    from packages import build, write_project

    archive = build(write_project(tmp_path / "src", dist="my-model", package="my_model"), tmp_path / "dist")
    home = tmp_path / "home"
    env = clean_env(LUME_HOME=str(home))
    env = {k: v for k, v in env.items() if not k.startswith("PREFECT_")}
    first = run_full_snippet(env, str(archive))
    assert run_full_snippet(env, str(archive)) == first
    assert first.split()[:5] == ["1", "1", "0.1.0", "my_model", "True"]
    assert (home / "prefect").is_dir()  # Prefect's home is inside LUME_HOME


@pytest.mark.slow
def test_full_example_on_mariadb_with_a_prefect_server_twice(fresh_db_url, prefect_server, tmp_path):
    import functools
    import http.server
    import threading

    from packages import build, write_project

    archive = build(write_project(tmp_path / "src", dist="my-model", package="my_model"), tmp_path / "dist")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(archive.parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = make_url(fresh_db_url("mariadb"))
    db = ModelDB(ModelDBConfig(url=url.render_as_string(hide_password=False)))
    migrations.upgrade(db)
    db.dispose()
    env = clean_env(
        LUME_HOME=str(tmp_path / "home"),
        LUME_ENVIRONMENT__ALLOW_HTTP="true", LUME_PREFECT__API_URL=prefect_server.url,
        LUME_MODEL_DB__HOST=url.host, LUME_MODEL_DB__PORT=str(url.port), LUME_MODEL_DB__USER=url.username,
        LUME_MODEL_DB__PASSWORD=url.password, LUME_MODEL_DB__DATABASE=url.database,
    )  # fmt: skip
    source = f"http://127.0.0.1:{server.server_port}/{archive.name}"
    try:
        first = run_full_snippet(env, source)
        assert run_full_snippet(env, source) == first
    finally:
        server.shutdown()
        server.server_close()
    assert first.split()[2:5] == ["0.1.0", "my_model", "True"]
