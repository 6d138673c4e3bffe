"""Change history on every dialect: actors, the audit trail, live history, compare-and-swap, approvals."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from factories import deployment_fields, make_deployment, make_flow, make_model, make_project, model_fields
from sqlalchemy import func, select

from lume_services.errors import (
    ApprovalRequiredError,
    DeploymentConflictError,
    DeploymentNotFoundError,
    InUseError,
    LiveDeploymentChangedError,
    LiveRequestClosedError,
    LiveRequestNotFoundError,
    ModelNotFoundError,
    SelfApprovalError,
    ValidationError,
)
from lume_services.services.models.db.schema import AuditEvent, LiveChange, LiveRequest
from lume_services.services.models.service import ModelDBService
from lume_services.services.models.unit_of_work import default_actor


def counts(model_db) -> dict[str, int]:
    with model_db.session(write=False) as s:
        return {
            t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (AuditEvent, LiveChange, LiveRequest)
        }


def events(service, **filters):
    return service.list_audit_events(limit=1000, **filters).items


def actions(service, **filters):
    return [e.action for e in events(service, **filters)]


def tick() -> None:
    """Let the clock move on, so that consecutive changes get distinct times on every dialect."""
    time.sleep(0.002)


@pytest.fixture
def alice(service) -> ModelDBService:
    return service.with_actor("alice")


@pytest.fixture
def bob(service) -> ModelDBService:
    return service.with_actor("bob")


class TestActor:
    def test_default_is_user_at_host(self, service):
        assert "@" in default_actor() and service.actor == default_actor()

    def test_explicit_actor_is_recorded(self, alice):
        model_id = make_model(alice)
        assert [(e.actor, e.action) for e in events(alice)] == [("alice", "model.created")]
        assert events(alice)[0].model_id == model_id

    @pytest.mark.parametrize("bad", ["", "   ", "x" * 101, "eve\nmallory", "tab\there", 7, None])
    def test_bad_actors_are_refused(self, service, bad):
        with pytest.raises(ValidationError, match="actor"):
            service.with_actor(bad) if bad is not None else ModelDBService(service.model_db, actor="")

    def test_actor_setting(self, lume_home, monkeypatch):
        from lume_services import config
        from lume_services.errors import EnvironmentNotConfiguredError

        monkeypatch.setenv("LUME_ACTOR", "jgarrahan")
        assert config.configure().model_db_service().actor == "jgarrahan"
        monkeypatch.setenv("LUME_ACTOR", "y" * 101)
        with pytest.raises(EnvironmentNotConfiguredError, match="LUME_ACTOR"):
            config.configure()


class TestAuditTrail:
    def test_model_lifecycle(self, alice):
        model_id = make_model(alice)
        assert make_model(alice, **{**alice.get_model(model_id=model_id).model_dump(exclude={"model_id", "created", "require_approval", "tags"})}) == model_id  # noqa: E501
        alice.update_model(model_id, description="renamed")
        alice.update_model(model_id, description="renamed")  # no change, no event
        alice.delete_model(model_id)
        created, updated, deleted = events(alice, model_id=model_id)
        assert (created.action, updated.action, deleted.action) == ("model.created", "model.updated", "model.deleted")
        assert created.after["author"] == "Jackie Garrahan" and created.before is None
        assert updated.before["description"].startswith("test_model") and updated.after == {"description": "renamed"}
        assert deleted.before["description"] == "renamed" and deleted.after is None
        assert created.entity == "model" and created.entity_id == str(model_id)
        assert created.time <= updated.time <= deleted.time and created.time.tzinfo is not None

    def test_deployment_project_and_flow_events(self, service):
        project = make_project(service)
        model_id = make_model(service)
        deployment_id = make_deployment(service, model_id)
        flow_id = make_flow(service, deployment_id, project)
        service.update_deployment(deployment_id, image="registry.example.org/x:2")
        service.update_project(project, description="changed")
        service.delete_flow(flow_id)
        service.delete_deployment(deployment_id)
        assert actions(service, model_id=model_id) == [
            "model.created", "deployment.created", "flow.created", "deployment.updated",
            "flow.deleted", "deployment.deleted",
        ]  # fmt: skip
        assert actions(service, entity="project") == ["project.created", "project.updated"]
        updated = events(service, action="deployment.updated")[0]
        assert updated.after == {"image": "registry.example.org/x:2"}
        assert events(service, action="deployment.created")[0].after["deployment_id"] == deployment_id

    def test_a_refused_write_leaves_no_event(self, service, model_db):
        model_id = make_model(service)
        fields = deployment_fields(model_id)
        service.store_deployment(**fields)
        before = counts(model_db)
        with pytest.raises(DeploymentConflictError):
            service.store_deployment(**{**fields, "sha256": "f" * 64, "is_live": True})
        with pytest.raises(ModelNotFoundError):
            service.store_deployment(**deployment_fields(10**6))
        assert counts(model_db) == before

    def test_an_identical_store_is_not_an_event(self, service, model_db):
        model_id = make_model(service)
        fields = deployment_fields(model_id)
        service.store_deployment(**fields)
        service.store_project(project_name="p", description="d")
        before = counts(model_db)
        service.store_deployment(**fields)
        service.store_project(project_name="p", description="d")
        assert counts(model_db) == before

    def test_deleting_a_model_keeps_its_events(self, service):
        model_id = make_model(service)
        make_deployment(service, model_id, is_live=True)
        service.delete_model(model_id, cascade=True)
        assert actions(service, model_id=model_id) == [
            "model.created", "deployment.created", "deployment.live_changed", "model.deleted",
        ]  # fmt: skip
        assert events(service, action="model.deleted")[0].before["deployments"] != []

    def test_a_bulk_import_writes_one_event_per_batch_and_per_live_change(self, service):
        models = service.store_models([model_fields() for _ in range(5)], batch_size=2)
        service.store_deployments([deployment_fields(m, is_live=True) for m in models], batch_size=5)
        assert actions(service, action="import.*") == ["import.completed"] * 4
        assert [e.after for e in events(service, action="import.*")][-1] == {"kind": "deployment", "records": 5}
        live = events(service, action="deployment.live_changed")
        assert sorted(e.model_id for e in live) == sorted(models)
        assert all(len(service.get_live_history(m)) == 1 for m in models)

    def test_filters_and_pages(self, service, alice, bob):
        for svc in (alice, bob, alice):
            make_model(svc)
        assert [e.actor for e in events(service, actor="alice")] == ["alice", "alice"]
        assert actions(service, action="model.*") == ["model.created"] * 3
        assert actions(service, action="model.%") == []  # LIKE wildcards are literal
        first = service.list_audit_events(limit=2)
        assert len(first) == 2 and first.next_after == first.items[-1].event_id
        rest = service.list_audit_events(limit=2, after=first.next_after)
        assert len(rest) == 1 and rest.next_after is None
        now = datetime.now(UTC)
        assert events(service, since=now + timedelta(minutes=1)) == []
        assert len(events(service, since=now - timedelta(minutes=5), until=now + timedelta(minutes=1))) == 3
        # any zone works
        assert len(events(service, since=(now - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=-8))))) == 3

    @pytest.mark.parametrize(
        "filters",
        [{"since": datetime(2026, 1, 1)}, {"until": "2026-01-01"}, {"model_id": "1"}, {"limit": 0}, {"actor": 3}],
    )
    def test_bad_filters_are_validation_errors(self, service, filters):
        with pytest.raises(ValidationError):
            service.list_audit_events(**filters)

    def test_there_is_no_call_that_changes_an_event(self, service):
        names = [n for n in dir(service) if "event" in n and not n.startswith("_")]
        assert names == ["events_settings", "list_audit_events", "list_events"]  # settings, and two reads


class TestLiveHistory:
    def test_intervals_oldest_first_with_who_and_why(self, alice, bob):
        model_id = make_model(alice)
        first, second = make_deployment(alice, model_id), make_deployment(alice, model_id)
        alice.set_live(first, reason="initial")
        tick()
        bob.set_live(second, reason="retrained on 2026-11 data")
        one, two = bob.get_live_history(model_id)
        assert (one.deployment_id, one.set_by, one.reason, one.ended_by) == (first, "alice", "initial", "bob")
        assert one.live_until == two.live_from and one.live_from < one.live_until
        assert (two.deployment_id, two.set_by, two.live_until, two.ended_by) == (second, "bob", None, None)
        assert two.version == alice.get_deployment(deployment_id=second).version

    def test_live_at_any_past_time(self, service):
        model_id = make_model(service)
        first, second = make_deployment(service, model_id), make_deployment(service, model_id)
        before_anything = datetime.now(UTC)
        tick()
        service.set_live(first)
        tick()
        between = datetime.now(UTC)
        tick()
        service.set_live(second)
        with pytest.raises(DeploymentNotFoundError):
            service.get_live_deployment(model_id, at=before_anything)
        assert service.get_live_deployment(model_id, at=between).deployment_id == first
        assert service.get_live_deployment(model_id=model_id, at=datetime.now(UTC)).deployment_id == second
        assert service.get_live_deployment(model_id).deployment_id == second
        at = service.get_live_at(model_id, at=between)
        assert at.interval.live_until is not None and at.model.model_id == model_id

    def test_at_must_be_aware(self, service):
        model_id = make_model(service)
        with pytest.raises(ValidationError, match="time zone"):
            service.get_live_deployment(model_id, at=datetime(2026, 11, 30, 3, 12))

    def test_unknown_model(self, service):
        with pytest.raises(ModelNotFoundError):
            service.get_live_history(10**6)
        with pytest.raises(ModelNotFoundError):
            service.get_live_deployment(10**6, at=datetime.now(UTC))

    def test_unsetting_and_deleting_the_live_deployment_close_its_interval(self, service):
        model_id = make_model(service)
        first, second = make_deployment(service, model_id, is_live=True), make_deployment(service, model_id)
        tick()
        service.update_deployment(first, is_live=False)
        tick()
        service.set_live(second)
        tick()
        service.delete_deployment(second)
        one, two = service.get_live_history(model_id)
        assert one.deployment_id == first and one.live_until is not None
        assert two.deployment_id == second and two.live_until is not None and two.ended_by == service.actor
        with pytest.raises(DeploymentNotFoundError):
            service.get_live_deployment(model_id)
        with pytest.raises(DeploymentNotFoundError):  # the deleted deployment cannot be returned
            service.get_live_deployment(model_id, at=two.live_from)

    def test_setting_the_live_one_live_again_changes_nothing(self, service, model_db):
        model_id = make_model(service)
        deployment_id = make_deployment(service, model_id, is_live=True)
        before = counts(model_db)
        service.set_live(deployment_id)
        service.store_deployment(**{**service.get_deployment(deployment_id=deployment_id).model_dump(
            exclude={"deployment_id", "deploy_date", "tags"})})  # fmt: skip
        assert counts(model_db) == before

    def test_live_for_a_beampath_at_a_time(self, service):
        hxr = [make_model(service, beampath="cu_hxr") for _ in range(3)]
        make_model(service, beampath="cu_sxr")
        lives = [make_deployment(service, m, is_live=True) for m in hxr[:2]]
        found = service.get_live_deployments(facility="lcls", beampath="cu_hxr")
        assert [(x.model.model_id, x.deployment.deployment_id) for x in found] == list(zip(hxr[:2], lives))
        assert service.get_live_deployments(facility="lcls", beampath="cu_hxr", at=datetime(2020, 1, 1, tzinfo=UTC)) == []
        assert service.get_live_deployments(facility="lcls", beampath="cu_hxr", laboratory="desy") == []


class TestSeveralModels:
    """Each model's live pointer is its own (regression: the state read once saw another model's)."""

    def test_the_live_deployment_of_another_model_is_not_ours(self, service):
        first = make_model(service)
        make_deployment(service, first, is_live=True)
        model_id = make_model(service)
        live = make_deployment(service, model_id, is_live=True)
        other = make_deployment(service, model_id)
        assert service.set_live(other, expected_live=live).is_live
        assert events(service, action="deployment.live_changed")[-1].before == {"live_deployment_id": live}
        assert service.request_live(live, reason="back").expected_live == other
        service.set_live(other)  # live already: no new interval
        assert [i.deployment_id for i in service.get_live_history(model_id)] == [live, other]
        service.update_deployment(other, is_live=False)
        assert service.get_live_history(model_id)[-1].live_until is not None
        with pytest.raises(DeploymentNotFoundError):
            service.get_live_deployment(model_id)
        assert service.get_live_deployment(first).model_id == first


class TestCompareAndSwap:
    def test_expected_live_matches(self, service):
        model_id = make_model(service)
        first, second = make_deployment(service, model_id), make_deployment(service, model_id)
        assert service.set_live(first, expected_live=None).is_live
        assert service.set_live(second, expected_live=first, reason="swap").deployment_id == second
        assert service.get_live_history(model_id)[-1].reason == "swap"

    def test_a_stale_expectation_writes_nothing(self, service, model_db):
        model_id = make_model(service)
        first, second, third = (make_deployment(service, model_id) for _ in range(3))
        service.set_live(second)
        before = counts(model_db)
        with pytest.raises(LiveDeploymentChangedError) as err:
            service.set_live(third, expected_live=first)
        assert (err.value.expected, err.value.actual, err.value.model_id) == (first, second, model_id)
        assert f"deployment {second}" in str(err.value) and f"deployment {first}" in str(err.value)
        with pytest.raises(LiveDeploymentChangedError) as err:
            service.set_live(third, expected_live=None)
        assert err.value.actual == second
        assert counts(model_db) == before and service.get_live_deployment(model_id).deployment_id == second

    @pytest.mark.parametrize("other", ["another model", "missing", "text"])
    def test_expected_live_must_be_a_deployment_of_the_model(self, service, model_db, other):
        model_id = make_model(service)
        target = make_deployment(service, model_id)
        expected = {"another model": make_deployment(service), "missing": 10**6, "text": "5"}[other]
        before = counts(model_db)
        with pytest.raises(ValidationError, match="expected_live"):
            service.set_live(target, expected_live=expected)
        assert counts(model_db) == before

    def test_unknown_deployment(self, service):
        with pytest.raises(DeploymentNotFoundError):
            service.set_live(10**6, expected_live=None)

    def test_the_model_named_must_own_the_deployment(self, service, model_db):
        """``model_id`` (what the REST route passes) is checked on the locked row; nothing is written."""
        model_id, other = make_model(service), make_model(service)
        target = make_deployment(service, model_id)
        service.update_model(other, require_approval=True)  # the ownership error wins over other checks
        before = counts(model_db)
        with pytest.raises(ValidationError, match=f"belongs to model {model_id}, not {other}"):
            service.set_live(target, expected_live=12345, model_id=other)
        assert counts(model_db) == before
        assert service.set_live(target, model_id=model_id).is_live


@pytest.fixture
def protected(alice):
    model_id = make_model(alice)
    live, candidate = make_deployment(alice, model_id, is_live=True), make_deployment(alice, model_id)
    alice.update_model(model_id, require_approval=True)
    return model_id, live, candidate


class TestApproval:
    def test_protecting_is_audited_and_shown(self, alice, protected):
        model_id, *_ = protected
        assert alice.get_model(model_id=model_id).require_approval is True
        assert events(alice, action="model.updated")[-1].after == {"require_approval": True}

    def test_set_live_and_live_stores_are_refused(self, alice, protected, model_db):
        model_id, live, candidate = protected
        before = counts(model_db)
        with pytest.raises(ApprovalRequiredError, match="request_live") as err:
            alice.set_live(candidate)
        assert err.value.model_id == model_id
        with pytest.raises(ApprovalRequiredError):
            alice.update_deployment(live, is_live=False)
        with pytest.raises(ApprovalRequiredError):
            alice.delete_deployment(live)
        with pytest.raises(ApprovalRequiredError):
            alice.store_deployment(**deployment_fields(model_id, is_live=True))
        with pytest.raises(InUseError, match="protected"):
            alice.delete_model(model_id, cascade=True)
        assert counts(model_db) == before and len(alice.get_deployments(model_id=model_id)) == 2
        alice.store_deployment(**deployment_fields(model_id))  # not live: fine

    def test_request_and_approval_by_another_actor(self, alice, bob, protected):
        model_id, live, candidate = protected
        request = alice.request_live(candidate, reason="better emittance fit")
        assert (request.state, request.expected_live, request.requested_by) == ("pending", live, "alice")
        with pytest.raises(SelfApprovalError):
            alice.approve_live(request.request_id)
        approved = bob.approve_live(request.request_id, reason="checked on the machine")
        assert (approved.state, approved.decided_by, approved.decision_reason) == (
            "approved", "bob", "checked on the machine",
        )  # fmt: skip
        assert bob.get_live_deployment(model_id).deployment_id == candidate
        interval = bob.get_live_history(model_id)[-1]
        assert (interval.set_by, interval.approved_by, interval.request_id) == ("alice", "bob", request.request_id)
        assert interval.reason == "better emittance fit"
        assert bob.get_live_history(model_id)[-2].ended_by == "bob"  # the approval ended it
        assert actions(bob, model_id=model_id)[-3:] == [
            "live_request.created", "deployment.live_changed", "live_request.approved",
        ]  # fmt: skip
        with pytest.raises(LiveRequestClosedError, match="approved by 'bob'"):
            bob.approve_live(request.request_id)
        assert bob.get_live_request(request.request_id) == approved

    def test_an_overtaken_request_fails_and_stays_pending(self, alice, bob, protected, service):
        model_id, live, candidate = protected
        third = make_deployment(alice, model_id)
        request = alice.request_live(candidate, reason="first")
        other = alice.request_live(third, reason="second")
        bob.approve_live(other.request_id)
        with pytest.raises(LiveDeploymentChangedError) as err:
            bob.approve_live(request.request_id)
        assert (err.value.expected, err.value.actual) == (live, third)
        assert bob.get_live_request(request.request_id).state == "pending"
        assert [r.request_id for r in bob.list_live_requests(model_id=model_id, state="pending")] == [request.request_id]
        rejected = alice.reject_live(request.request_id, reason="overtaken")
        assert rejected.state == "rejected" and rejected.decided_by == "alice"
        assert service.list_live_requests(state="pending").items == []

    def test_request_with_a_stale_expectation_is_refused(self, alice, protected):
        model_id, live, candidate = protected
        with pytest.raises(LiveDeploymentChangedError):
            alice.request_live(candidate, reason="x", expected_live=candidate)

    @pytest.mark.parametrize(
        "call, error",
        [
            (lambda s, ids: s.approve_live(10**6), LiveRequestNotFoundError),
            (lambda s, ids: s.reject_live(10**6, reason="no"), LiveRequestNotFoundError),
            (lambda s, ids: s.reject_live(ids[0], reason=""), ValidationError),
            (lambda s, ids: s.request_live(ids[2], reason=""), ValidationError),
            (lambda s, ids: s.request_live(ids[1], reason="already live"), ValidationError),
            (lambda s, ids: s.request_live(10**6, reason="x"), DeploymentNotFoundError),
            (lambda s, ids: s.list_live_requests(state="open"), ValidationError),
        ],
    )
    def test_bad_input_writes_nothing(self, alice, bob, protected, model_db, call, error):
        model_id, live, candidate = protected
        pending = alice.request_live(candidate, reason="x").request_id
        before = counts(model_db)
        with pytest.raises(error):
            call(bob, (pending, live, candidate))
        assert counts(model_db) == before

    def test_unprotected_models_accept_requests_too(self, alice, bob):
        model_id = make_model(alice)
        deployment_id = make_deployment(alice, model_id)
        request = alice.request_live(deployment_id, reason="please")
        assert request.expected_live is None
        bob.approve_live(request.request_id)
        assert alice.get_live_deployment(model_id).deployment_id == deployment_id
