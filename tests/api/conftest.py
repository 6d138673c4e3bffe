"""Fixtures of the API tests: one real server per dialect for the session, tokens of every kind per test.

The server (uvicorn, `lume-services serve`; two worker processes on MariaDB
and PostgreSQL) runs on a migrated database of its own per dialect, named
``lume_api``: its job runners claim every queued job of their database for the
rest of the session, so they must never see another test module's jobs. Here
``model_db`` is that database, emptied before each test, and tests set data up
through the in-process service on the same database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import httpx
import pytest
from apiserver import ApiServer, start_api_server
from factories import emptied
from sqlalchemy import update

from lume_services.services.models.db.schema import ApiToken, utcnow
from lume_services.services.models.service import ModelDBService

API_DB = "lume_api"


@pytest.fixture
def model_db(dialect: str, migrated_dbs: Any) -> Any:
    """The API servers' database of ``dialect``, emptied for this test."""
    return emptied(migrated_dbs(dialect, API_DB))


@pytest.fixture(scope="session")
def api_servers(migrated_dbs: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    servers: dict[str, ApiServer] = {}
    failed: dict[str, str] = {}  # tried once: the next tests fail at once instead of trying again

    def get(dialect: str) -> ApiServer:
        if dialect in failed:
            pytest.fail(failed[dialect], pytrace=False)
        if dialect not in servers:
            db = migrated_dbs(dialect, API_DB)
            url = db.engine.url.render_as_string(hide_password=False)
            try:
                servers[dialect] = start_api_server(tmp_path_factory.mktemp(f"api-{dialect}"), url,
                                                    workers=1 if dialect == "sqlite" else 2)  # fmt: skip
            except RuntimeError as exc:  # the server is ours: never a skip
                failed[dialect] = f"the API server failed to start on {dialect}: {exc}"
                pytest.fail(failed[dialect], pytrace=False)
        return servers[dialect]

    yield get
    for server in servers.values():
        server.stop()


@dataclass
class Principals:
    """A token of every kind (None: anonymous), made for one test."""

    tokens: dict[str, Optional[str]]
    project: str  # the write_other token's project

    def headers(self, who: str) -> dict[str, str]:
        token = self.tokens[who]
        return {} if token is None else {"Authorization": f"Bearer {token}"}


KINDS = ("anonymous", "read", "write_other", "write", "admin", "revoked", "expired")


@pytest.fixture
def principals(service: ModelDBService, model_db: Any) -> Principals:
    other = service.store_project(project_name="other-project", description="not the test's")
    tokens: dict[str, Optional[str]] = {"anonymous": None}
    tokens["read"] = service.create_token("reader", scope="read").token.get_secret_value()
    tokens["write_other"] = service.create_token("other-writer", scope="write", project_name=other
                                                 ).token.get_secret_value()  # fmt: skip
    tokens["write"] = service.create_token("writer", scope="write").token.get_secret_value()
    tokens["admin"] = service.create_token("admin", scope="admin").token.get_secret_value()
    tokens["revoked"] = service.create_token("gone", scope="admin").token.get_secret_value()
    service.revoke_token("gone")
    expired = service.create_token("late", scope="admin", expires_in=timedelta(days=1))
    tokens["expired"] = expired.token.get_secret_value()
    with model_db.engine.begin() as conn:  # an expiry in the past cannot be created, only reached
        conn.execute(update(ApiToken.__table__).where(ApiToken.__table__.c.name == "late")
                     .values(expires=utcnow() - timedelta(seconds=1)))  # fmt: skip
    return Principals(tokens, other)


@pytest.fixture
def api(dialect: str, model_db: Any, api_servers: Any) -> Iterator[httpx.Client]:
    """An httpx client of the dialect's server (on a database emptied for this test)."""
    server = api_servers(dialect)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.server = server  # type: ignore[attr-defined]
        yield client
