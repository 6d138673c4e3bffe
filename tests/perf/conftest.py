"""Fixtures of the performance tests: registries of a known shape, built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from scenario import Scenario, new_database_url, populate

from lume_services import migrations
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.service import ModelDBService


@pytest.fixture(scope="session")
def registry_of(server_pool: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Factory: the Scenario with ``n`` related rows on ``dialect`` (built once)."""
    built: dict[tuple[str, int], Scenario] = {}
    base = tmp_path_factory.mktemp("perf-registries")

    def get(dialect: str, n: int) -> Scenario:
        if (dialect, n) not in built:
            url = new_database_url(server_pool, dialect, base, f"lume_perf_{os.getpid()}_{n}")
            db = ModelDB(ModelDBConfig(url=url))
            migrations.upgrade(db)
            built[dialect, n] = populate(ModelDBService(db), n)
        return built[dialect, n]

    yield get
    for scenario in built.values():
        scenario.service.model_db.dispose()
