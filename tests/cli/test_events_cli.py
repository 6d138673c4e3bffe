"""`lume-services webhooks` and `lume-services events`, on the embedded registry with a loopback receiver.

The commands run through click's CliRunner (``events list --follow`` in a
subprocess); the settings allow http and loopback targets, as a test must.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from receiver import Receiver

from lume_services.cli.main import cli
from lume_services.events import signing

EVENTS_ENV = {"LUME_EVENTS__ALLOW_HTTP": "true", "LUME_EVENTS__ALLOW_PRIVATE_TARGETS": "127.0.0.0/8",
              "LUME_EVENTS__BACKOFF_INITIAL": "0.01", "LUME_EVENTS__TIMEOUT": "0.5",
              "LUME_EVENTS__CONNECT_TIMEOUT": "0.2", "LUME_EVENTS__LEASE": "1"}  # fmt: skip


@pytest.fixture
def run(lume_home, monkeypatch):
    for k, v in EVENTS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LUME_ACTOR", "alice")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, (result.output, result.exception)
        assert "Traceback" not in result.output
        return result

    return invoke


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def add_model(run) -> int:
    out = run("models", "create", "--author", "A", "--laboratory", "slac", "--facility", "lcls",
              "--beampath", "cu_hxr", "--description", f"m{os.urandom(4).hex()}", "--json").output  # fmt: skip
    return json.loads(out)["model_id"]


class TestWebhooksCommands:
    def test_add_prints_the_secret_once_and_list_never(self, run, receiver):
        out = run("webhooks", "add", receiver.url, "--event", "model.created", "--event", "deployment.*").output
        secret = out.split("shown only now; store it with the receiver): ")[1].strip()
        assert len(secret) == 64 and "Webhook 1 sends model.created, deployment.*" in out
        listed = run("webhooks", "list").output + run("webhooks", "list", "--json").output
        assert receiver.url in listed and secret not in listed
        assert secret not in run("audit", "--json").output + run("events", "list", "--json").output

    def test_secret_file_and_test_delivery(self, run, receiver, tmp_path):
        (tmp_path / "secret").write_text("a-long-enough-secret\n")
        out = run("webhooks", "add", receiver.url, "--event", "*", "--secret-file", str(tmp_path / "secret"),
                  "--json").output  # fmt: skip
        assert json.loads(out)["secret"] is None
        out = run("webhooks", "test", "1").output
        assert "delivered" in out and "HTTP 204" in out
        request = receiver.requests[-1]
        assert request.json()["type"] == "webhook.tested"
        assert signing.verify("a-long-enough-secret", request.body, request.headers["x-lume-signature"])

    @pytest.mark.parametrize(
        "args, message",
        [
            (["ftp://example.org/h", "--event", "*"], "expected an https:// URL"),
            (["http://127.0.0.1:1/h", "--event", "deployment.exploded"], "unknown event type"),
            (["http://127.0.0.1:1/h", "--event", "*", "--secret-file", "/nonexistent/s"], "/nonexistent/s"),
        ],
    )
    def test_bad_input_exits_1_and_stores_nothing(self, run, args, message):
        assert message in run("webhooks", "add", *args, code=1).output
        assert "No webhooks." in run("webhooks", "list").output

    def test_unknown_ids_and_usage(self, run):
        assert "No webhook matches webhook_id=7" in run("webhooks", "remove", "7", code=1).output
        assert "No webhook delivery matches delivery_id=7" in run("webhooks", "replay", "7", code=1).output
        assert "DELIVERY_ID, or --webhook" in run("webhooks", "replay", code=2).output

    def test_failed_deliveries_listed_and_replayed(self, run, receiver, monkeypatch):
        run("webhooks", "add", receiver.url, "--event", "model.created")
        receiver.mode = "fail"
        add_model(run)
        monkeypatch.setenv("LUME_EVENTS__MAX_ATTEMPTS", "1")
        assert "1 delivery attempt(s) made." in run("events", "deliver", "--once").output
        monkeypatch.delenv("LUME_EVENTS__MAX_ATTEMPTS")
        failed = json.loads(run("webhooks", "deliveries", "--failed", "--json").output)["items"]
        assert [(d["state"], d["last_status"]) for d in failed] == [("dead", 500)]
        receiver.mode = "ok"
        assert "replays delivery 1" in run("webhooks", "replay", str(failed[0]["delivery_id"])).output
        run("events", "deliver", "--once")
        shown = json.loads(run("webhooks", "deliveries", "--show", "2", "--json").output)
        assert shown["state"] == "delivered" and shown["attempt_log"][0]["status_code"] == 204
        assert "replayed" in run("webhooks", "replay", "--webhook", "1", "--since", "2000-01-01T00:00Z",
                                 "--json").output  # fmt: skip


class TestEventsList:
    def test_cursor_and_types(self, run):
        add_model(run), add_model(run)
        page = json.loads(run("events", "list", "--limit", "1", "--json").output)
        assert len(page["items"]) == 1 and page["next_after"] == page["items"][0]["event_id"]
        rest = json.loads(run("events", "list", "--after", str(page["next_after"]), "--json").output)
        assert [e["action"] for e in rest["items"]] == ["model.created"]
        assert "No events after this cursor." in run("events", "list", "--type", "deployment.*").output
        assert "unknown event type" in run("events", "list", "--type", "nope", code=1).output

    def test_follow_prints_new_events_as_json_lines(self, run, lume_home):
        add_model(run)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from lume_services.cli import main; main()", "events", "list", "--follow",
             "--json", "--interval", "0.05"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            first = json.loads(proc.stdout.readline())
            add_model(run)
            second = json.loads(proc.stdout.readline())
            assert first["action"] == second["action"] == "model.created"
            assert second["event_id"] > first["event_id"]
        finally:
            proc.kill()
            proc.wait()
