"""A database server crashes (SIGKILL) and comes back under a writing process.

The writer is a real process storing models one by one and retrying a
DatabaseError (store_model is get-or-create, so a retry after an unknown
outcome is safe). Afterwards every acknowledged write is there exactly once
and nothing is duplicated; the writer reconnected by itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dbservers
import pytest

from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.service import ModelDBService

pytestmark = pytest.mark.slow
WRITES = 60


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a database that cannot start is a failure)", pytrace=False)
    pytest.skip(reason)

WRITER = r"""
import sys, time
from lume_services.errors import DatabaseError
from lume_services.services.models.db.db import ModelDB, ModelDBConfig
from lume_services.services.models.service import ModelDBService
svc = ModelDBService(ModelDB(ModelDBConfig(url=sys.argv[1])))
for i in range(int(sys.argv[2])):
    fields = dict(author=f"writer {i}", laboratory="slac", facility="lcls", beampath="cu_hxr", description="d")
    while True:
        try:
            model_id = svc.store_model(**fields)
            break
        except DatabaseError as exc:
            print("RETRY", exc.outcome_unknown, str(exc).splitlines()[0][:200], flush=True)
            time.sleep(0.1)
    print("ACK", i, model_id, flush=True)
    time.sleep(0.02)
print("DONE", flush=True)
"""


@pytest.fixture(params=["mariadb", "postgresql"])
def private_server(request, tmp_path: Path):
    """A server of this test's own: crashing it disturbs no other test."""
    finder, starter = {
        "mariadb": (dbservers.find_mariadb, dbservers.start_mariadb),
        # MariaDB's throwaway settings already survive a crash of the process (log flushed to the OS
        # at every commit); PostgreSQL's acknowledge commits before writing them (synchronous_commit).
        "postgresql": (dbservers.find_postgres, lambda base: dbservers.start_postgres(base, crash_safe=True)),
    }[request.param]
    if finder() is None:
        _unavailable(f"{request.param} is not installed (run scripts/install_test_servers.sh)")
    try:
        server = starter(tmp_path / "server")
    except dbservers.ServerStartError as exc:
        _unavailable(f"{request.param} failed to start: {exc}")
    yield server
    server.stop()


def test_acknowledged_writes_survive_a_server_crash_exactly_once(private_server):
    url = private_server.create_database("restart")
    ModelDB(ModelDBConfig(url=url)).upgrade_schema()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(WRITES)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    acknowledged: dict[int, int] = {}
    retries, output = [], []
    try:
        crashed = False
        for line in writer.stdout:
            output.append(line)
            word, *rest = line.split()
            if word == "ACK":
                acknowledged[int(rest[0])] = int(rest[1])
                if len(acknowledged) == WRITES // 3 and not crashed:
                    private_server.crash()
                    crashed = True
                    time.sleep(1.0)  # the writer meets a dead server for a while
                    private_server.start_again()
            elif word == "RETRY":
                retries.append(line)
            elif word == "DONE":
                break
        assert writer.wait(timeout=120) == 0, "".join(output[-30:])
    finally:
        if writer.poll() is None:
            writer.kill()
    assert crashed and retries, "the writer never met the crash:\n" + "".join(output[-30:])
    assert all("***" in r or private_server.password not in r for r in retries)  # no password in messages
    models = ModelDBService(ModelDB(ModelDBConfig(url=url))).get_models()
    assert len(acknowledged) == WRITES
    assert sorted(m.author for m in models) == sorted(
        f"writer {i}" for i in range(WRITES)
    )  # none lost, none twice
    assert {m.author: m.model_id for m in models} == {f"writer {i}": mid for i, mid in acknowledged.items()}
