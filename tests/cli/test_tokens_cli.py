"""``lume-services tokens``: the token printed once, never listed, revoked by name; durations checked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lume_services.cli.main import cli


@pytest.fixture
def run(lume_home, monkeypatch):
    monkeypatch.setenv("LUME_ACTOR", "admin-on-host")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        assert "Traceback" not in result.output
        return result

    return invoke


def test_create_list_revoke(run) -> None:
    out = run("tokens", "create", "jgarrahan", "--scope", "write", "--expires-in", "90d").output
    token = out.strip().splitlines()[-1]
    assert token.startswith("lume_") and "scope 'write'" in out and "expiring" in out
    listed = run("tokens", "list").output + run("tokens", "list", "--json").output
    assert "jgarrahan" in listed and token not in listed
    assert "already exists" in run("tokens", "create", "jgarrahan", code=1).output
    assert "is revoked" in run("tokens", "revoke", "jgarrahan").output
    assert run("tokens", "list").output.strip() == "No tokens."
    assert json.loads(run("tokens", "list", "--all", "--json").output)[0]["revoked_by"] == "admin-on-host"
    created = json.loads(run("tokens", "create", "jgarrahan", "--scope", "admin", "--json").output)
    assert created["token"].startswith("lume_") and created["record"]["scope"] == "admin"


@pytest.mark.parametrize("args, message", [
    (["--expires-in", "5y"], "is not a duration"),
    (["--expires-in", "99999w"], "longer than"),
    (["--scope", "root"], "'root' is not one of"),
])  # fmt: skip
def test_usage_errors_exit_2(run, args, message) -> None:
    assert message in run("tokens", "create", "x", *args, code=2).output


def test_an_unknown_project_is_a_domain_error(run) -> None:
    out = run("tokens", "create", "x", "--scope", "write", "--project", "nope", code=1).output
    assert "No project matches project_name='nope'" in out
