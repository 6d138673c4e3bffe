"""The history commands of `lume-services`, run against real databases.

``deployments history``, ``deployments set-live --expect-live / --reason``,
``deployments request-live``, ``requests list / approve / reject``,
``models protect / unprotect``, ``audit`` and ``live``. Each invocation runs
through click's CliRunner with ``LUME_MODEL_DB__URL`` pointing at the
``model_db`` fixture (SQLite, MariaDB, PostgreSQL) and ``LUME_ACTOR`` set to
the person acting; every one is checked for tracebacks and the password.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import factories
import pytest
from click.testing import CliRunner, Result

from lume_services.cli.main import cli
from lume_services.services.models.db.db import ModelDB
from lume_services.services.models.records import (
    AuditEventRecord,
    DeploymentRecord,
    LiveAt,
    LiveIntervalRecord,
    LiveRequestRecord,
    ModelRecord,
)
from lume_services.services.models.service import ModelDBService

Run = Callable[..., Result]
EVENT_FIELDS = {"event_id", "time", "actor", "action", "entity", "entity_id", "model_id", "before", "after"}


def url_of(model_db: ModelDB) -> str:
    return model_db.url.render_as_string(hide_password=False)


def make_runner(env: dict[str, str]) -> Run:
    runner = CliRunner()
    password = env.get("LUME_MODEL_DB__PASSWORD") or _password(env.get("LUME_MODEL_DB__URL", ""))

    def invoke(*args: str, code: int = 0, actor: str = "alice") -> Result:
        result = runner.invoke(cli, list(args), env={**env, "LUME_ACTOR": actor})
        detail = (result.stdout, result.stderr, result.exception)
        assert result.exit_code == code, detail
        assert result.exception is None or isinstance(result.exception, SystemExit), detail
        for text in (result.stdout, result.stderr):
            assert "Traceback" not in text
            assert not password or password not in text
        return result

    return invoke


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).password if url else None


@pytest.fixture
def run(model_db: ModelDB, lume_home: Path) -> Run:
    return make_runner({"LUME_MODEL_DB__URL": url_of(model_db)})


def load_json(result: Result) -> Any:
    return json.loads(result.stdout)


def live_id(service: ModelDBService, model_id: int) -> int | None:
    found = service.list_deployments(model_id=model_id, is_live=True).items
    return found[0].deployment_id if found else None


def history(run: Run, model_id: int) -> list[LiveIntervalRecord]:
    return [
        LiveIntervalRecord.model_validate(i)
        for i in load_json(run("deployments", "history", str(model_id), "--json"))
    ]


def events(run: Run, *args: str) -> list[AuditEventRecord]:
    data = load_json(run("audit", "--json", *args))
    return [AuditEventRecord.model_validate(e) for e in data["items"]]


def iso(moment: datetime) -> str:
    return moment.isoformat()


def row_of(out: str, first: str) -> list[str]:
    """The cells (split on runs of two spaces) of the table row whose first cell is ``first``."""
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in\n{out}")


@pytest.fixture
def three(service: ModelDBService) -> tuple[int, list[int]]:
    """A model with three deployments, none live."""
    model_id = factories.make_model(service)
    deps = [factories.make_deployment(service, model_id, version=f"1.{i}.0") for i in range(3)]
    return model_id, deps


# -- deployments history --------------------------------------------------------------


class TestDeploymentsHistory:
    def test_intervals_oldest_first_with_who_and_why(self, run, service, three):
        model_id, (d1, d2, d3) = three
        run("deployments", "set-live", str(d1), "--reason", "first release", actor="alice")
        run("deployments", "set-live", str(d2), "--reason", "fixes the drift", actor="bob")
        run("deployments", "set-live", str(d3), actor="alice")

        intervals = history(run, model_id)
        assert intervals == service.get_live_history(model_id)
        assert [i.deployment_id for i in intervals] == [d1, d2, d3]
        assert [i.version for i in intervals] == ["1.0.0", "1.1.0", "1.2.0"]
        assert [i.set_by for i in intervals] == ["alice", "bob", "alice"]
        assert [i.ended_by for i in intervals] == ["bob", "alice", None]
        assert [i.reason for i in intervals] == ["first release", "fixes the drift", None]
        assert [i.approved_by for i in intervals] == [None, None, None]
        assert intervals[0].live_until == intervals[1].live_from
        assert intervals[1].live_until == intervals[2].live_from
        assert intervals[2].live_until is None
        assert intervals[0].live_from < intervals[1].live_from < intervals[2].live_from

        out = run("deployments", "history", str(model_id)).stdout
        lines = out.splitlines()
        assert [c.strip() for c in lines[0].split("  ") if c.strip()] == [
            "Deployment", "Version", "Live from (UTC)", "Live until (UTC)", "Set by", "Approved by",
            "Ended by", "Reason",
        ]  # fmt: skip
        assert out.index(f"\n{d1} ") < out.index(f"\n{d2} ") < out.index(f"\n{d3} ")
        first = row_of(out, str(d1))
        assert first[1] == "1.0.0"
        assert first[2] == intervals[0].live_from.strftime("%Y-%m-%d %H:%M:%S")
        assert first[4:] == ["alice", "-", "bob", "first release"]
        assert row_of(out, str(d2))[4:] == ["bob", "-", "alice", "fixes the drift"]
        last = row_of(out, str(d3))
        assert last[3] == "now"
        assert last[4:] == ["alice", "-", "-", "-"]

    def test_none_live_yet_and_unknown_model(self, run, three):
        model_id, _ = three
        out = run("deployments", "history", str(model_id)).stdout
        assert out.strip() == f"No deployment of model {model_id} has been live yet."
        assert load_json(run("deployments", "history", str(model_id), "--json")) == []
        result = run("deployments", "history", "999999", code=1)
        assert result.stderr.startswith("Error: No model matches model_id=999999;")


# -- deployments set-live --expect-live --------------------------------------------------


class TestSetLiveExpectLive:
    def test_success_names_the_demoted_deployment(self, run, service, three):
        model_id, (d1, d2, _) = three
        run("deployments", "set-live", str(d1))
        out = run("deployments", "set-live", str(d2), "--expect-live", str(d1), "--reason", "r2").stdout
        assert f"Deployment {d2} (model {model_id}, version '1.1.0') is now live" in out
        assert f"deployment {d1} (version '1.0.0') is no longer live" in out
        assert live_id(service, model_id) == d2
        assert history(run, model_id)[-1].reason == "r2"

    def test_json_and_already_live(self, run, service, three):
        model_id, (d1, d2, _) = three
        run("deployments", "set-live", str(d1))
        data = load_json(run("deployments", "set-live", str(d2), "--expect-live", str(d1), "--json"))
        assert DeploymentRecord.model_validate(data["live"]) == service.get_deployment(deployment_id=d2)
        assert DeploymentRecord.model_validate(data["demoted"]) == service.get_deployment(deployment_id=d1)
        assert data["demoted"]["is_live"] is False
        out = run("deployments", "set-live", str(d2), "--expect-live", str(d2)).stdout
        assert "was already live; nothing changed" in out
        assert len(history(run, model_id)) == 2

    def test_stale_expectation_changes_nothing(self, run, service, model_db, three):
        model_id, (d1, d2, d3) = three
        run("deployments", "set-live", str(d1), actor="bob")
        before = factories.registry_snapshot(model_db)
        events_before = service.list_audit_events(limit=1000).items
        result = run("deployments", "set-live", str(d3), "--expect-live", str(d2), code=1)
        assert result.stderr.startswith(
            f"Error: The live deployment of model {model_id} is deployment {d1}, "
        )
        assert f"not deployment {d2} as expected" in result.stderr
        assert f"deployments history {model_id}" in result.stderr
        assert result.stdout == ""
        assert live_id(service, model_id) == d1
        assert factories.registry_snapshot(model_db) == before
        assert service.list_audit_events(limit=1000).items == events_before
        assert [i.deployment_id for i in history(run, model_id)] == [d1]

    def test_expect_none(self, run, service, three):
        model_id, (d1, d2, _) = three
        out = run("deployments", "set-live", str(d1), "--expect-live", "none").stdout
        assert "is now live; no other deployment of the model was live." in out
        assert live_id(service, model_id) == d1
        result = run("deployments", "set-live", str(d2), "--expect-live", "NONE", code=1)
        assert f"is deployment {d1}, not no deployment as expected" in result.stderr
        assert live_id(service, model_id) == d1

    def test_expected_deployment_of_another_model_is_refused(self, run, service, three):
        model_id, (d1, _, _) = three
        other = factories.make_deployment(service)
        result = run("deployments", "set-live", str(d1), "--expect-live", str(other), code=1)
        assert "Invalid expected_live" in result.stderr
        assert f"it is a deployment of model {service.get_deployment(deployment_id=other).model_id}" in (
            result.stderr
        )
        assert live_id(service, model_id) is None

    @pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", ""])
    def test_bad_expectation_is_a_usage_error(self, run, service, three, value):
        model_id, (d1, _, _) = three
        result = run("deployments", "set-live", str(d1), "--expect-live", value, code=2)
        assert "Invalid value for '--expect-live'" in result.stderr
        assert "nor 'none'" in result.stderr
        assert live_id(service, model_id) is None


# -- protection -------------------------------------------------------------------------


class TestProtect:
    def test_protect_blocks_set_live_and_unprotect_allows_it(self, run, service, three):
        model_id, (d1, d2, _) = three
        run("deployments", "set-live", str(d1))
        out = run("models", "protect", str(model_id)).stdout
        assert f"Model {model_id} is protected" in out
        assert service.get_model(model_id=model_id).require_approval is True
        assert "Requires approval:  yes" in run("models", "show", str(model_id)).stdout
        shown = load_json(run("models", "show", str(model_id), "--json"))["model"]
        assert shown["require_approval"] is True

        refused = run("deployments", "set-live", str(d2), "--reason", "hurry", code=1)
        assert refused.stderr.startswith(f"Error: Model {model_id} requires approval")
        assert "deployments request-live" in refused.stderr
        assert live_id(service, model_id) == d1
        assert [i.deployment_id for i in history(run, model_id)] == [d1]

        data = load_json(run("models", "unprotect", str(model_id), "--json"))
        assert ModelRecord.model_validate(data) == service.get_model(model_id=model_id)
        assert data["require_approval"] is False
        assert "Requires approval:  no" in run("models", "show", str(model_id)).stdout
        run("deployments", "set-live", str(d2))
        assert live_id(service, model_id) == d2

    def test_protect_is_audited_and_unknown_model_is_exit_1(self, run, service, three):
        model_id, _ = three
        run("models", "protect", str(model_id), actor="carol")
        run("models", "protect", str(model_id), actor="carol")  # again: nothing changes
        (event,) = events(run, "--action", "model.updated")
        assert (event.actor, event.model_id) == ("carol", model_id)
        assert (event.before, event.after) == ({"require_approval": False}, {"require_approval": True})
        assert run("models", "protect", "999999", code=1).stderr.startswith("Error: No model matches")


# -- requests ---------------------------------------------------------------------------


@pytest.fixture
def protected(run: Run, service: ModelDBService, three: tuple[int, list[int]]) -> tuple[int, list[int]]:
    """The three-deployment model with its first deployment live, then protected."""
    model_id, deps = three
    run("deployments", "set-live", str(deps[0]))
    run("models", "protect", str(model_id))
    return model_id, deps


class TestRequestAndApprove:
    def test_request_then_another_person_approves(self, run, service, protected):
        model_id, (d1, d2, _) = protected
        out = run("deployments", "request-live", str(d2), "--reason", "new calibration", actor="alice").stdout
        (request,) = service.list_live_requests(model_id=model_id).items
        assert (request.deployment_id, request.expected_live, request.state) == (d2, d1, "pending")
        assert (request.requested_by, request.reason) == ("alice", "new calibration")
        assert f"Live request {request.request_id} is pending." in out
        assert f"makes deployment {d2} (model {model_id}, version '1.1.0') live" in out
        assert f"replaces deployment {d1} (version '1.0.0')" in out
        assert f"lume-services requests approve {request.request_id}" in out
        assert live_id(service, model_id) == d1  # a request changes nothing live

        out = run("requests", "approve", str(request.request_id), "--reason", "checked", actor="bob").stdout
        assert f"Live request {request.request_id} is approved by bob" in out
        assert f"deployment {d2} (model {model_id}, version '1.1.0') is now live (requested by alice)" in out
        assert f"deployment {d1} (version '1.0.0') is no longer live" in out
        assert live_id(service, model_id) == d2
        decided = service.get_live_request(request.request_id)
        assert (decided.state, decided.decided_by, decided.decision_reason) == ("approved", "bob", "checked")
        last = history(run, model_id)[-1]
        assert (last.deployment_id, last.set_by, last.approved_by) == (d2, "alice", "bob")
        assert (last.reason, last.request_id) == ("new calibration", request.request_id)
        assert row_of(run("deployments", "history", str(model_id)).stdout, str(d2))[4:6] == ["alice", "bob"]

    def test_request_json_and_approve_json(self, run, service, protected):
        model_id, (d1, d2, _) = protected
        data = load_json(run("deployments", "request-live", str(d2), "--reason", "why", "--json"))
        request = LiveRequestRecord.model_validate(data)
        assert request == service.get_live_request(request.request_id)
        data = load_json(run("requests", "approve", str(request.request_id), "--json", actor="bob"))
        assert LiveRequestRecord.model_validate(data["request"]) == service.get_live_request(
            request.request_id
        )
        assert data["request"]["state"] == "approved"
        assert DeploymentRecord.model_validate(data["live"]) == service.get_deployment(deployment_id=d2)
        assert data["live"]["is_live"] is True
        assert DeploymentRecord.model_validate(data["demoted"]) == service.get_deployment(deployment_id=d1)

    def test_self_approval_is_refused(self, run, service, protected):
        model_id, (d1, d2, _) = protected
        request = LiveRequestRecord.model_validate(
            load_json(
                run("deployments", "request-live", str(d2), "--reason", "mine", "--json", actor="alice")
            )
        )
        result = run("requests", "approve", str(request.request_id), code=1, actor="alice")
        assert result.stderr.startswith(
            f"Error: Live request {request.request_id} was made by 'alice', who cannot also approve it"
        )
        assert live_id(service, model_id) == d1
        assert service.get_live_request(request.request_id).state == "pending"

    def test_reject(self, run, service, protected):
        model_id, (d1, d2, _) = protected
        request = LiveRequestRecord.model_validate(
            load_json(run("deployments", "request-live", str(d2), "--reason", "try it", "--json"))
        )
        run("requests", "reject", str(request.request_id), code=2, actor="bob")  # --reason is required
        out = run("requests", "reject", str(request.request_id), "--reason", "not yet", actor="bob").stdout
        assert f"Live request {request.request_id} (deployment {d2} of model {model_id}" in out
        assert "is rejected by bob; the live deployment is unchanged." in out
        rejected = service.get_live_request(request.request_id)
        assert (rejected.state, rejected.decided_by, rejected.decision_reason) == (
            "rejected",
            "bob",
            "not yet",
        )
        assert live_id(service, model_id) == d1
        again = run("requests", "approve", str(request.request_id), code=1, actor="carol")
        assert "was already rejected by 'bob'" in again.stderr
        assert live_id(service, model_id) == d1

    def test_stale_request_expectation_creates_nothing(self, run, service, protected):
        model_id, (d1, d2, d3) = protected
        result = run(
            "deployments", "request-live", str(d3), "--reason", "r", "--expect-live", str(d2), code=1
        )
        assert f"is deployment {d1}, not deployment {d2} as expected" in result.stderr
        assert service.list_live_requests().items == []
        run("deployments", "request-live", str(d3), "--reason", "r", "--expect-live", str(d1))
        assert [r.deployment_id for r in service.list_live_requests().items] == [d3]

    def test_approval_after_the_live_deployment_changed_fails(self, run, service, protected):
        model_id, (d1, d2, d3) = protected
        request = LiveRequestRecord.model_validate(
            load_json(run("deployments", "request-live", str(d2), "--reason", "r", "--json"))
        )
        run("models", "unprotect", str(model_id))
        run("deployments", "set-live", str(d3), actor="carol")
        run("models", "protect", str(model_id))
        result = run("requests", "approve", str(request.request_id), code=1, actor="bob")
        assert f"is deployment {d3}, not deployment {d1} as expected" in result.stderr
        assert live_id(service, model_id) == d3
        assert service.get_live_request(request.request_id).state == "pending"

    def test_request_without_reason_is_a_usage_error(self, run, service, protected):
        _, (_, d2, _) = protected
        assert "Missing option '--reason'" in run("deployments", "request-live", str(d2), code=2).stderr
        assert service.list_live_requests().items == []

    def test_unknown_request_is_exit_1(self, run):
        result = run("requests", "approve", "424242", code=1, actor="bob")
        assert result.stderr.startswith("Error: No live request matches request_id=424242;")


class TestRequestsList:
    def test_pending_model_filter_and_pages(self, run, service, protected):
        model_id, (d1, d2, d3) = protected
        other_model = factories.make_model(service)
        factories.make_deployment(service, other_model, is_live=True)
        o2 = factories.make_deployment(service, other_model)
        run("models", "protect", str(other_model))
        ids = []
        for dep in (d2, d3, o2):
            data = load_json(run("deployments", "request-live", str(dep), "--reason", f"for {dep}", "--json"))
            ids.append(data["request_id"])
        run("requests", "reject", str(ids[0]), "--reason", "no", actor="bob")

        def listed(*args: str) -> list[int]:
            data = load_json(run("requests", "list", "--json", *args))
            return [LiveRequestRecord.model_validate(r).request_id for r in data["items"]]

        assert listed() == ids
        assert listed("--pending") == ids[1:]
        assert listed("--pending", "--model-id", str(model_id)) == [ids[1]]
        assert listed("--model-id", str(other_model)) == [ids[2]]

        out = run("requests", "list", "--pending").stdout
        lines = out.splitlines()
        assert lines[0].split() == [
            "Request", "Model", "Deployment", "Replaces", "State", "Requested", "by", "Requested", "(UTC)",
            "Reason", "Decided", "by",
        ]  # fmt: skip
        assert str(ids[0]) not in [line.split()[0] for line in lines[2:]]
        assert row_of(out, str(ids[1]))[:6] == [
            str(ids[1]),
            str(model_id),
            str(d3),
            str(d1),
            "pending",
            "alice",
        ]
        row = row_of(out, str(ids[2]))
        # Its Replaces column (o1) is left to TestSeveralModelsLive, which shows the service bug.
        assert row[:3] + row[4:6] == [str(ids[2]), str(other_model), str(o2), "pending", "alice"]
        assert row[7:] == [f"for {o2}", "-"]
        everything = run("requests", "list").stdout
        assert row_of(everything, str(ids[0]))[4] == "rejected"
        assert row_of(everything, str(ids[0]))[-1] == "bob"

        first = load_json(run("requests", "list", "--limit", "1", "--json"))
        assert first["next_after"] == ids[0]
        assert (
            f"More requests follow; show them with --after {ids[0]}."
            in run("requests", "list", "--limit", "1").stdout
        )
        assert listed("--after", str(ids[0])) == ids[1:]

    def test_empty(self, run, three):
        assert run("requests", "list", "--pending").stdout.strip() == "No pending requests."
        assert run("requests", "list").stdout.strip() == "No requests match."
        assert load_json(run("requests", "list", "--json")) == {"items": [], "next_after": None}


# -- several models live at once --------------------------------------------------------

# Each model's live pointer is its own (regression: the service's state read once saw any
# live deployment of the registry).


@pytest.fixture
def two_live(service: ModelDBService) -> dict[str, int]:
    """Model m1 with d1 live (created first), model m2 with e1 live and e2 not."""
    m1 = factories.make_model(service)
    d1 = factories.make_deployment(service, m1, version="1.0.0", is_live=True)
    m2 = factories.make_model(service)
    e1 = factories.make_deployment(service, m2, version="2.0.0", is_live=True)
    e2 = factories.make_deployment(service, m2, version="2.1.0")
    return dict(m1=m1, d1=d1, m2=m2, e1=e1, e2=e2)


class TestSeveralModelsLive:
    def test_expect_live_compares_with_the_models_own_live_deployment(self, run, service, two_live):
        t = two_live
        run("deployments", "set-live", str(t["e2"]), "--expect-live", str(t["e1"]))
        assert live_id(service, t["m2"]) == t["e2"]

    def test_a_request_replaces_the_models_own_live_deployment(self, run, service, two_live):
        t = two_live
        run("models", "protect", str(t["m2"]))
        data = load_json(run("deployments", "request-live", str(t["e2"]), "--reason", "r", "--json"))
        assert data["expected_live"] == t["e1"]

    def test_the_audit_event_names_the_demoted_deployment(self, run, service, two_live):
        t = two_live
        run("deployments", "set-live", str(t["e2"]))
        (event,) = events(
            run, "--action", "deployment.live_changed", "--model-id", str(t["m2"]), "--actor", "alice"
        )
        assert event.before == {"live_deployment_id": t["e1"]}

    def test_setting_the_live_deployment_live_again_changes_nothing(self, run, service, two_live):
        t = two_live
        out = run("deployments", "set-live", str(t["e1"])).stdout
        assert "was already live; nothing changed" in out
        assert [i.deployment_id for i in history(run, t["m2"])] == [t["e1"]]


# -- audit ------------------------------------------------------------------------------


@pytest.fixture
def story(run: Run, service: ModelDBService) -> dict[str, Any]:
    """Two models with events by carol (setup), alice and bob (CLI)."""
    carol = service.with_actor("carol")
    m1, m2 = factories.make_model(carol), factories.make_model(carol)
    d1 = factories.make_deployment(carol, m1, version="1.0.0")
    d2 = factories.make_deployment(carol, m1, version="2.0.0")
    d3 = factories.make_deployment(carol, m2, version="3.0.0")
    run("deployments", "set-live", str(d1), "--reason", "first", actor="alice")
    run("deployments", "set-live", str(d2), actor="bob")
    run("deployments", "set-live", str(d3), actor="bob")
    run("models", "protect", str(m2), actor="alice")
    return dict(m1=m1, m2=m2, d1=d1, d2=d2, d3=d3)


class TestAudit:
    def test_model_filter(self, run, story):
        m1, d1, d2 = story["m1"], story["d1"], story["d2"]
        found = events(run, "--model-id", str(m1))
        assert {e.model_id for e in found} == {m1}
        assert [(e.actor, e.action, e.entity, e.entity_id) for e in found] == [
            ("carol", "model.created", "model", str(m1)),
            ("carol", "deployment.created", "deployment", str(d1)),
            ("carol", "deployment.created", "deployment", str(d2)),
            ("alice", "deployment.live_changed", "deployment", str(d1)),
            ("bob", "deployment.live_changed", "deployment", str(d2)),
        ]
        first_live, second_live = found[3], found[4]
        assert first_live.before == {"live_deployment_id": None}
        assert first_live.after == {"live_deployment_id": d1, "version": "1.0.0", "reason": "first"}
        assert second_live.before == {"live_deployment_id": d1}
        assert [e.event_id for e in found] == sorted(e.event_id for e in found)

    def test_actor_and_action_filters(self, run, story):
        assert [(e.action, e.entity_id) for e in events(run, "--actor", "bob")] == [
            ("deployment.live_changed", str(story["d2"])),
            ("deployment.live_changed", str(story["d3"])),
        ]
        by_alice = events(run, "--actor", "alice")
        assert [e.action for e in by_alice] == ["deployment.live_changed", "model.updated"]
        assert events(run, "--actor", "ALICE") == []  # actors compare exactly

        deployment_events = events(run, "--action", "deployment.*")
        assert {e.action for e in deployment_events} == {"deployment.created", "deployment.live_changed"}
        assert len(deployment_events) == 6
        assert len(events(run, "--action", "deployment.live_changed")) == 3
        assert events(run, "--action", "deployment") == []  # exact unless it ends in .*
        assert [e.entity_id for e in events(run, "--entity", "model")] == [
            str(story["m1"]), str(story["m2"]), str(story["m2"]),
        ]  # fmt: skip
        both = events(run, "--actor", "bob", "--model-id", str(story["m2"]))
        assert [e.entity_id for e in both] == [str(story["d3"])]

    def test_since_and_until(self, run, story):
        everything = events(run)
        assert len(everything) == 9
        future = datetime.now(UTC) + timedelta(days=1)
        assert events(run, "--since", iso(future)) == []
        assert (
            run("audit", "--since", future.strftime("%Y-%m-%dT%H:%MZ")).stdout.strip() == "No events match."
        )
        assert events(run, "--until", iso(future)) == everything
        assert events(run, "--until", "2000-01-01T00:00Z") == []

        pivot = next(e for e in everything if e.actor == "bob")
        since = events(run, "--since", iso(pivot.time))  # inclusive
        until = events(run, "--until", iso(pivot.time))  # exclusive
        assert pivot in since and pivot not in until
        assert until + since == everything
        # The same instant written with another offset selects the same events.
        elsewhere = pivot.time.astimezone(timezone(timedelta(hours=-7)))
        assert events(run, "--since", iso(elsewhere)) == since

    def test_time_without_zone_is_a_usage_error(self, run, story):
        result = run("audit", "--since", "2026-11-30T03:12", code=2)
        assert "Invalid value for '--since'" in result.stderr
        assert "has no time zone" in result.stderr
        assert "add Z for UTC or an offset" in result.stderr
        assert "2026-11-30T03:12Z" in result.stderr
        assert result.stdout == ""
        bad = run("audit", "--until", "yesterday", code=2)
        assert "is not an ISO 8601 time" in bad.stderr
        assert run("audit", "--since", "2026-11-30T03:12Z", "--json").exit_code == 0
        assert run("audit", "--since", "2026-11-30T03:12:00+01:00", "--json").exit_code == 0

    def test_json_has_the_fields(self, run, service, story):
        data = load_json(run("audit", "--json"))
        assert data["next_after"] is None
        assert len(data["items"]) == 9
        for item in data["items"]:
            assert set(item) == EVENT_FIELDS
        assert [
            AuditEventRecord.model_validate(e) for e in data["items"]
        ] == service.list_audit_events().items
        protect = data["items"][-1]
        assert protect["action"] == "model.updated"
        assert protect["actor"] == "alice"
        assert protect["entity"] == "model"
        assert protect["entity_id"] == str(story["m2"])
        assert protect["model_id"] == story["m2"]
        assert protect["before"] == {"require_approval": False}
        assert protect["after"] == {"require_approval": True}
        assert datetime.fromisoformat(protect["time"]).tzinfo is not None

    def test_table_and_pages(self, run, story):
        everything = events(run)
        out = run("audit").stdout
        lines = out.splitlines()
        assert lines[0].split() == ["Event", "Time", "(UTC)", "Actor", "Action", "Entity", "Model", "Change"]
        first_live = next(e for e in everything if e.action == "deployment.live_changed")
        row = row_of(out, str(first_live.event_id))
        assert row[1] == first_live.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert row[2:6] == ["alice", "deployment.live_changed", f"deployment {story['d1']}", str(story["m1"])]
        assert row[6] == f"live_deployment_id: none -> {story['d1']}, version=1.0.0, reason=first"
        second_live = [e for e in everything if e.action == "deployment.live_changed"][1]
        assert row_of(out, str(second_live.event_id))[6] == (
            f"live_deployment_id: {story['d1']} -> {story['d2']}, version=2.0.0"  # no reason: left out
        )
        protect = row_of(out, str(everything[-1].event_id))
        assert protect[6] == "require_approval: false -> true"
        created = row_of(out, str(everything[0].event_id))
        assert created[6].startswith("new: author=Jackie Garrahan, laboratory=slac")
        assert all(len(row_of(out, line.split()[0])[6]) <= 100 for line in lines[2:])

        page = load_json(run("audit", "--limit", "3", "--json"))
        assert [e["event_id"] for e in page["items"]] == [e.event_id for e in everything[:3]]
        assert page["next_after"] == everything[2].event_id
        more = f"More events follow; show them with --after {everything[2].event_id}."
        assert run("audit", "--limit", "3").stdout.rstrip().endswith(more)
        rest = events(run, "--after", str(everything[2].event_id))
        assert rest == everything[3:]


# -- live at a time ---------------------------------------------------------------------


class TestLive:
    def test_what_is_live_now_on_a_beampath(self, run, service):
        a = factories.make_model(service, laboratory="slac")
        b = factories.make_model(service, laboratory="desy")
        idle = factories.make_model(service)
        elsewhere = factories.make_model(service, beampath="sc_bsyd")
        a1 = factories.make_deployment(service, a, version="1.0.0")
        b1 = factories.make_deployment(service, b, version="2.0.0")
        factories.make_deployment(service, idle)
        e1 = factories.make_deployment(service, elsewhere)
        run("deployments", "set-live", str(a1), actor="alice")
        run("models", "protect", str(b))
        request = load_json(run("deployments", "request-live", str(b1), "--reason", "r", "--json"))
        run("requests", "approve", str(request["request_id"]), actor="bob")
        run("deployments", "set-live", str(e1))

        found = [
            LiveAt.model_validate(r)
            for r in load_json(run("live", "--facility", "lcls", "--beampath", "cu_hxr", "--json"))
        ]
        assert found == service.get_live_deployments(facility="lcls", beampath="cu_hxr")
        assert [(r.model.model_id, r.deployment.deployment_id) for r in found] == [(a, a1), (b, b1)]
        assert [(r.interval.set_by, r.interval.approved_by) for r in found] == [
            ("alice", None),
            ("alice", "bob"),
        ]
        assert all(r.interval.live_until is None for r in found)

        out = run("live", "--facility", "lcls", "--beampath", "cu_hxr").stdout
        assert out.splitlines()[0].split() == [
            "Model", "Laboratory", "Deployment", "Version", "Live", "since", "(UTC)", "Set", "by", "Approved", "by",
        ]  # fmt: skip
        row = row_of(out, str(a))
        assert row[:4] == [str(a), "slac", str(a1), "1.0.0"]
        assert row[4] == found[0].interval.live_from.strftime("%Y-%m-%d %H:%M:%S")
        assert row[5:] == ["alice", "-"]
        assert row_of(out, str(b))[1:4] == ["desy", str(b1), "2.0.0"]
        assert row_of(out, str(b))[5:] == ["alice", "bob"]
        assert str(idle) not in [line.split()[0] for line in out.splitlines()[2:]]

        only_desy = load_json(
            run("live", "--facility", "lcls", "--beampath", "cu_hxr", "--laboratory", "desy", "--json")
        )
        assert [r["model"]["model_id"] for r in only_desy] == [b]

    def test_at_a_past_time(self, run, service, three):
        model_id, (d1, d2, _) = three
        run("deployments", "set-live", str(d1))
        run("deployments", "set-live", str(d2))
        first, second = history(run, model_id)

        def live_at(at: str) -> list[LiveAt]:
            data = load_json(run("live", "--facility", "lcls", "--beampath", "cu_hxr", "--at", at, "--json"))
            return [LiveAt.model_validate(r) for r in data]

        (then,) = live_at(iso(first.live_from))
        assert then.deployment.deployment_id == d1
        assert then.interval.live_until == second.live_from
        assert then.interval.ended_by == "alice"
        between = first.live_from + (second.live_from - first.live_from) / 2
        assert [r.deployment.deployment_id for r in live_at(iso(between))] == [d1]
        assert [r.deployment.deployment_id for r in live_at(iso(second.live_from))] == [d2]

        before = first.live_from - timedelta(seconds=1)
        assert live_at(iso(before)) == []
        out = run("live", "--facility", "lcls", "--beampath", "cu_hxr", "--at", "2000-01-01T00:00Z").stdout
        assert (
            out.strip()
            == "Nothing was live on facility 'lcls', beampath 'cu_hxr' at 2000-01-01 00:00:00 UTC."
        )

    def test_nothing_live_now_and_usage_errors(self, run, three):
        out = run("live", "--facility", "lcls", "--beampath", "cu_hxr").stdout
        assert out.strip() == "Nothing was live on facility 'lcls', beampath 'cu_hxr' now."
        assert "Missing option '--beampath'" in run("live", "--facility", "lcls", code=2).stderr
        result = run("live", "--facility", "lcls", "--beampath", "cu_hxr", "--at", "2026-11-30T03:12", code=2)
        assert "has no time zone" in result.stderr
