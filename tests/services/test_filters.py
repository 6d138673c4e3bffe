"""Filter values are validated like stored values, before any SQL runs.

A filter on a datetime column (``created``, ``deploy_date``) must be an aware
datetime in any zone and is compared after conversion to UTC; a string, a
naive datetime or another type is a ValidationError naming the field. The
property test calls every public filter-taking read with arbitrary values on
every dialect: whatever it raises is a lume-services error, never SQLAlchemy's
or a driver's.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from factories import make_deployment, make_flow, make_model, make_project, sha
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lume_services.errors import LUMEServicesError, ValidationError
from lume_services.services.models.db.schema import Deployment, Flow, FlowOfFlows, Model, Project
from lume_services.services.models.validation import FILTER_ALIASES, columns

PACIFIC_STANDARD = timezone(timedelta(hours=-8))


def filter_keys(table: Any) -> list[str]:
    return sorted({*columns(table), *(a for a, f in FILTER_ALIASES.items() if f in columns(table))})


# -- direct tests -------------------------------------------------------------------


class TestDatetimeFilters:
    def test_an_aware_datetime_in_another_zone_matches_the_same_instant(self, service):
        model_id = make_model(service)
        make_model(service)
        created = service.get_model(model_id=model_id).created
        for zone in (
            PACIFIC_STANDARD,
            zoneinfo.ZoneInfo("America/Los_Angeles"),
            zoneinfo.ZoneInfo("Asia/Kolkata"),
        ):
            local = created.astimezone(zone)
            assert local.utcoffset() != timedelta(0)
            assert service.get_model(created=local).model_id == model_id
            assert [m.model_id for m in service.get_models(created=local)] == [model_id]
            assert [m.model_id for m in service.list_models(created=local)] == [model_id]
        assert service.get_models(created=created + timedelta(microseconds=1)) == []

    def test_deploy_date_in_another_zone(self, service):
        deployment_id = make_deployment(service)
        deploy_date = service.get_deployment(deployment_id=deployment_id).deploy_date
        local = deploy_date.astimezone(PACIFIC_STANDARD)
        assert service.get_deployment(deploy_date=local).deployment_id == deployment_id
        assert service.get_latest_deployment(deploy_date=local).deployment_id == deployment_id
        assert [d.deployment_id for d in service.list_deployments(deploy_date=local)] == [deployment_id]

    @pytest.mark.parametrize(
        "call",
        [
            lambda s, v: s.get_model(created=v),
            lambda s, v: s.get_models(created=v),
            lambda s, v: s.list_models(created=v),
            lambda s, v: s.list_models_with_live(created=v),
            lambda s, v: s.get_deployment(deploy_date=v),
            lambda s, v: s.get_deployments(deploy_date=v),
            lambda s, v: s.get_latest_deployment(deploy_date=v),
            lambda s, v: s.list_deployments(deploy_date=v),
        ],
        ids=["get_model", "get_models", "list_models", "list_models_with_live", "get_deployment",
             "get_deployments", "get_latest_deployment", "list_deployments"],
    )  # fmt: skip
    @pytest.mark.parametrize(
        "value, problem",
        [
            (datetime(2024, 1, 1), "has no time zone; pass an aware datetime"),
            ("2024-01-01", "expected a datetime, got str; pass an aware datetime"),
            (datetime(2024, 1, 1).date(), "expected a datetime, got date; pass an aware datetime"),
            (1704067200, "expected a datetime, got int; pass an aware datetime"),
            (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "out of range once converted to UTC"),
        ],
        ids=["naive", "str", "date", "int", "before-year-1-in-UTC"],
    )
    def test_anything_but_an_aware_datetime_is_refused_naming_the_field(self, service, call, value, problem):
        make_deployment(service)
        with pytest.raises(ValidationError) as info:
            call(service, value)
        field = "created" if "created" in str(info.value) else "deploy_date"
        assert info.value.field == field
        assert str(info.value).startswith(f"Invalid {field} ")
        assert problem in str(info.value)
        assert str(info.value).endswith("Nothing was read.")


class TestOtherFilterValues:
    @pytest.mark.parametrize(
        "kwargs, field, problem",
        [
            (dict(author=["slac"]), "author", "expected text, got list"),
            (dict(author={"a": 1}), "author", "expected text, got dict"),
            (dict(author=b"slac"), "author", "expected text, got bytes"),
            (dict(model_id=2**31), "model_id", "must be between -2147483648 and 2147483647"),
            (dict(model_id=1.0), "model_id", "expected an integer, got float"),
            (dict(require_approval=2), "require_approval", "expected True or False"),
        ],
    )
    def test_models(self, service, kwargs, field, problem):
        with pytest.raises(ValidationError, match=problem) as info:
            service.get_models(**kwargs)
        assert info.value.field == field

    def test_an_integer_filter_fits_its_columns_type(self, service):
        """INTEGER ids up to 2**31 - 1 (PostgreSQL casts the parameter), 64-bit audit event ids."""
        assert service.get_models(model_id=2**31 - 1) == []
        assert service.list_audit_events(after=2**31).items == []
        with pytest.raises(
            ValidationError, match="must be between -9223372036854775808 and 9223372036854775807"
        ):
            service.list_audit_events(after=2**63)
        with pytest.raises(ValidationError, match="must be between -2147483648 and 2147483647"):
            service.get_live_history(-(2**31) - 1)

    @pytest.mark.parametrize("value", ["ab\x00cd", "sha256:\ud800", ["ab"]])
    def test_a_checksum_filter_is_checked_after_normalising(self, service, value):
        with pytest.raises(ValidationError) as info:
            service.get_deployments(sha256=value)
        assert info.value.field == "sha256"

    def test_steps_by_subflow(self, service):
        """flow_id is the step's own column (filter_by found it ambiguous with the joined flow's)."""
        project = make_project(service)
        a, b = make_flow(service, project_name=project), make_flow(service, project_name=project)
        service.store_flow_of_flows(
            parent_flow_id="p", flow_name="c", project_name=project, composing_flows=[a, b, a]
        )
        assert [s.position for s in service.get_flow_of_flows(flow_id=a)] == [1, 3]
        assert [s.flow_id for s in service.get_flow_of_flows(parent_flow_id="p", position=2)] == [b]

    def test_a_json_field_is_not_a_filter(self, service):
        with pytest.raises(ValidationError, match="JSON field cannot be used as a filter"):
            service.get_flow_of_flows(mapped_parameters={"x": 1})

    def test_a_filter_that_is_too_long_matches_nothing(self, service):
        make_model(service, author="x" * 100)
        assert service.get_models(author="x" * 1000) == []
        # Longer than SQLite's LIKE pattern limit (50,000 bytes): still just no match.
        assert service.list_models(search="x" * 60_000).items == []
        assert service.list_models(search="x" * 100).items != []
        assert service.list_audit_events(action="model" * 20_000 + ".*").items == []
        assert service.list_audit_events(action="model.*").items != []


# -- the property: no filter value reaches a driver unvalidated ----------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    st.floats(),
    st.decimals(allow_nan=False),
    st.text(),
    st.text(st.characters(exclude_categories=())),  # NUL, lone surrogates
    st.sampled_from(
        ["", " ", "a\x00b", "\ud800", "sha256:" + "A" * 64, "%", "_", "'; --", "deployment.*", "x" * 60_000]
    ),
    st.binary(),
    st.datetimes(),  # naive
    st.datetimes(
        timezones=st.timezones() | st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
    ),
    st.dates(),
    st.timedeltas(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.tuples(SCALARS),
    st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
    st.frozensets(st.integers(), max_size=2),
)
PAGE = ["limit", "after"]
# Each public read that takes filters, and the keywords it takes.
READS: dict[str, list[str]] = {
    "get_model": filter_keys(Model),
    "get_models": filter_keys(Model),
    "list_models": [*filter_keys(Model), *PAGE, "search"],
    "list_models_with_live": [*filter_keys(Model), *PAGE, "search"],
    "get_deployment": filter_keys(Deployment),
    "get_deployments": filter_keys(Deployment),
    "get_latest_deployment": filter_keys(Deployment),
    "list_deployments": [*filter_keys(Deployment), *PAGE],
    "get_project": filter_keys(Project),
    "get_projects": filter_keys(Project),
    "get_flow": filter_keys(Flow),
    "get_flows": filter_keys(Flow),
    "get_flow_of_flows": filter_keys(FlowOfFlows),
    "list_audit_events": ["model_id", "actor", "action", "entity", "entity_id", "since", "until", *PAGE],
    "list_live_requests": ["model_id", "state", *PAGE],
    "get_live_deployments": ["facility", "beampath", "laboratory", "at"],
}
# Reads whose arguments are required (all given).
REQUIRED: dict[str, list[str]] = {
    "get_live_at": ["model_id", "at"],
    "get_live_deployment": ["model_id", "at"],
    "get_live_history": ["model_id"],
    "get_live_request": ["request_id"],
    "load_deployment": ["model_id", "deployment_id"],
}


def seed(service) -> list[Any]:
    """A little of everything, so that some generated filters match rows; returns values to reuse."""
    project = make_project(service)
    model_id = make_model(service, facility="lcls", beampath="cu_hxr")
    first = make_deployment(service, model_id, sha256=sha("seed"), is_live=True)
    second = make_deployment(service, model_id)
    step = make_flow(service, first, project)
    service.store_flow_of_flows(parent_flow_id="composite", flow_name="c", project_name=project,
                                composing_flows=[{"flow_id": step, "mapped_parameters": {"x": 1}}])  # fmt: skip
    service.update_model(model_id, require_approval=True)
    request = service.request_live(second, reason="property test")
    model = service.get_model(model_id=model_id)
    dep = service.get_deployment(deployment_id=first)
    return [model_id, first, second, request.request_id, project, step, "composite", sha("seed"),
            model.author, model.facility, model.beampath, model.created, dep.deploy_date,
            model.created.astimezone(PACIFIC_STANDARD), "pending", "model.*", "model"]  # fmt: skip


def test_no_filter_value_reaches_the_database_unvalidated(service, dialect):
    """Every public read with arbitrary values: it answers, or raises a LUMEServicesError.

    The @given function is nested so that it can draw from the seeded rows and
    run a per-dialect number of examples (200 on SQLite, 30 on a server). All
    its examples share this test's one ``service`` on purpose: every call is a
    read, so nothing needs resetting between examples. That sharing is what
    Hypothesis's function-scoped-fixture health check warns about; a nested
    function takes no fixtures, so the check does not fire and nothing is
    suppressed.
    """
    known = seed(service)
    value = st.one_of(VALUES, st.sampled_from(known))
    calls = st.one_of(
        *(st.tuples(st.just(name), st.dictionaries(st.sampled_from(keys), value, max_size=3))
          for name, keys in READS.items()),
        *(st.tuples(st.just(name), st.fixed_dictionaries(dict.fromkeys(keys, value)))
          for name, keys in REQUIRED.items()),
    )  # fmt: skip

    @settings(
        max_examples=200 if dialect == "sqlite" else 30,
        deadline=None,
        database=None,
    )
    @given(call=calls)
    @example(call=("get_models", {"created": "2024-01-01"}))  # the reported defects, always tried
    @example(call=("get_model", {"created": datetime(2024, 1, 1)}))
    @example(call=("get_deployments", {"sha256": "sha256:\ud800"}))
    @example(call=("get_models", {"model_id": 2**70}))
    @example(call=("list_audit_events", {"since": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))}))
    def check(call: tuple[str, dict[str, Any]]) -> None:
        name, kwargs = call
        if name == "get_live_deployments":
            kwargs = {"facility": "lcls", "beampath": "cu_hxr", **kwargs}
        try:
            getattr(service, name)(**kwargs)
        except LUMEServicesError:
            pass

    check()
