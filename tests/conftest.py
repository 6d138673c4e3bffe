"""Shared fixtures: real databases on SQLite, MariaDB and PostgreSQL.

Database servers are started once per session (throwaway data dirs on
loopback ports, see tests/dbservers.py), migrated once, and emptied before
each test. ``LUME_TEST_DIALECTS`` (default ``sqlite,mariadb,postgresql``)
picks the dialects. A server that is not installed or cannot start is a
skip locally and a failure when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import dbservers  # noqa: E402
from factories import emptied  # noqa: E402

from lume_services import migrations  # noqa: E402
from lume_services.services.models.db.db import ModelDB, ModelDBConfig  # noqa: E402
from lume_services.services.models.service import ModelDBService  # noqa: E402

ALL_DIALECTS = ("sqlite", "mariadb", "postgresql")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def selected_dialects() -> list[str]:
    raw = os.environ.get("LUME_TEST_DIALECTS", ",".join(ALL_DIALECTS))
    chosen = [d.strip() for d in raw.split(",") if d.strip()]
    unknown = set(chosen) - set(ALL_DIALECTS)
    if unknown:
        raise pytest.UsageError(f"LUME_TEST_DIALECTS has unknown dialects {sorted(unknown)}")
    return chosen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the SQLite runs of tests marked ``server_only`` (nothing to test there, so no skip)."""
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_sqlite = params.get("dialect") == "sqlite"
        (drop if on_sqlite and item.get_closest_marker("server_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a database that cannot start is a failure)", pytrace=False)
    pytest.skip(reason)


class ServerPool:
    """Starts each server at most once per session; remembers failures."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.servers: dict[str, dbservers.Server] = {}
        self.errors: dict[str, str] = {}

    def get(self, dialect: str) -> dbservers.Server:
        if dialect in self.errors:
            _unavailable(self.errors[dialect])
        if dialect not in self.servers:
            finder, starter = {
                "mariadb": (dbservers.find_mariadb, dbservers.start_mariadb),
                "postgresql": (dbservers.find_postgres, dbservers.start_postgres),
            }[dialect]
            if finder() is None:
                self.errors[dialect] = f"{dialect} is not installed (run scripts/install_test_servers.sh)"
                _unavailable(self.errors[dialect])
            try:
                self.servers[dialect] = starter(self.base / dialect)
            except dbservers.ServerStartError as exc:
                self.errors[dialect] = f"{dialect} failed to start: {exc}"
                _unavailable(self.errors[dialect])
        return self.servers[dialect]

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@pytest.fixture(scope="session")
def server_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("dbservers"))
    yield pool
    pool.stop()


def _new_database_url(dialect: str, pool: ServerPool, tmp: Path, name: str) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp / (name + '.db')}"
    return pool.get(dialect).create_database(name)


_counter = iter(range(1, 10**6))


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, server_pool: ServerPool, tmp_path: Path):
    """Factory: the URL of a brand-new empty database on ``dialect``."""

    def make(dialect: str) -> str:
        return _new_database_url(dialect, server_pool, tmp_path, f"lume_fresh_{os.getpid()}_{next(_counter)}")

    return make


@pytest.fixture(scope="session")
def migrated_dbs(server_pool: ServerPool, tmp_path_factory: pytest.TempPathFactory):
    """Migrated ModelDBs for the whole session, one per dialect and name (built on demand).

    ``name`` keeps apart databases that long-lived processes use: the API tests'
    servers run job runners that claim any queued job of their database, so they
    get one of their own (see tests/api/conftest.py).
    """
    dbs: dict[tuple[str, str], ModelDB] = {}
    base = tmp_path_factory.mktemp("registries")

    def get(dialect: str, name: str = "lume_registry") -> ModelDB:
        if (dialect, name) not in dbs:
            url = _new_database_url(dialect, server_pool, base, name)
            db = ModelDB(ModelDBConfig(url=url))
            migrations.upgrade(db)
            dbs[dialect, name] = db
        return dbs[dialect, name]

    yield get
    for db in dbs.values():
        db.dispose()


@pytest.fixture(params=selected_dialects())
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def model_db(dialect: str, migrated_dbs) -> ModelDB:
    """A migrated, empty model database on each selected dialect."""
    return emptied(migrated_dbs(dialect))


@pytest.fixture
def service(model_db: ModelDB) -> ModelDBService:
    return ModelDBService(model_db)


@pytest.fixture
def lume_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated LUME_HOME with no other LUME_* variables set."""
    for name in list(os.environ):
        if name.upper().startswith("LUME_") and name.upper() != "LUME_TEST_DIALECTS":
            monkeypatch.delenv(name)
    home = tmp_path / "lume-home"
    monkeypatch.setenv("LUME_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _reset_config():
    """Tests that call configure() must not leak their context into others.

    Nor PREFECT_HOME: the scheduling service points it at the test's LUME_HOME
    (a directory gone once the test ends) when nothing else sets it.
    """
    from lume_services import config

    prefect_home = os.environ.get("PREFECT_HOME")
    yield
    if config.context is not None:
        config.context.close()
    config.context = None
    config._settings = None
    if prefect_home is None:
        os.environ.pop("PREFECT_HOME", None)
    else:
        os.environ["PREFECT_HOME"] = prefect_home


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `prefect server start` on loopback for the whole session."""
    from prefect_server import start_prefect_server

    try:
        server = start_prefect_server(tmp_path_factory.mktemp("prefect-server"))
    except RuntimeError as exc:  # Prefect is a dependency: never a skip
        pytest.fail(f"prefect server failed to start: {exc}", pytrace=False)
    yield server
    server.stop()


_MLFLOW: dict[str, Any] = {}  # the server launched when the session collected a test that needs it


def pytest_collection_finish(session: pytest.Session) -> None:
    """Launch `mlflow server` as soon as a collected test needs it: it starts (about a minute on a
    loaded machine) while the tests before it run; the ``mlflow_server`` fixture waits for it."""
    import tempfile

    import mlflowserver

    if not any("mlflow_server" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    try:
        _MLFLOW["server"] = mlflowserver.launch_mlflow_server(Path(tempfile.mkdtemp(prefix="lume-mlflow-")))
    except mlflowserver.MlflowServerError as exc:
        _MLFLOW["error"] = str(exc)


def pytest_sessionfinish(session: pytest.Session) -> None:
    server = _MLFLOW.pop("server", None)
    if server is not None:
        server.stop()
        shutil.rmtree(server.home, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server():
    """A real `mlflow server` on loopback for the whole session (tests/mlflowserver.py).

    Without MLflow installed this is a skip locally and a failure with CI=true.
    """
    import mlflowserver

    if "error" in _MLFLOW or "server" not in _MLFLOW:
        _unavailable(f"mlflow server could not be launched: {_MLFLOW.get('error', 'not launched')}")
    try:
        return mlflowserver.wait_ready(_MLFLOW["server"])
    except mlflowserver.MlflowServerError as exc:
        _MLFLOW["error"] = f"mlflow server failed to start: {exc}"
        _unavailable(_MLFLOW["error"])
