"""Listings build their records from rows without validating again: the records must equal validated ones.

Every record type a listing returns through ``fetch_all`` (models,
deployments, audit events, live requests) is read both ways from the same
rows, on every dialect: through the service, and through the same SELECT
validated with ``model_validate`` (what the service did before). They must be
equal field by field, in the same order, with the same fields set, the same
types (aware UTC datetimes, bools, dicts for JSON), NULLs as None and NULL
tags as ``{}``, and as frozen.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pydantic
import pytest
from factories import make_deployment, make_model
from sqlalchemy import select

from lume_services.services.models.db.schema import AuditEvent, Deployment, LiveRequest, Model
from lume_services.services.models.records import (
    AuditEventRecord,
    DeploymentRecord,
    FlowOfFlowsRecord,
    LiveRequestRecord,
    ModelRecord,
    ModelWithLive,
    records_builder,
)


def validated(model_db, table, record, order):
    """The rows of ``table`` validated the slow way, in ``order``."""
    with model_db.engine.connect() as conn:
        return [record.model_validate(row) for row in conn.execute(select(table).order_by(order))]


def assert_same(built: list, expected: list) -> None:
    assert len(built) == len(expected) > 0
    for b, e in zip(built, expected):
        assert type(b) is type(e)
        assert b == e
        assert repr(b) == repr(e)  # same field order
        assert b.model_dump() == e.model_dump() and b.model_dump_json() == e.model_dump_json()
        assert b.model_fields_set == e.model_fields_set
        for name in type(e).model_fields:
            got, want = getattr(b, name), getattr(e, name)
            assert type(got) is type(want), name
            if isinstance(want, datetime):
                assert got.tzinfo is not None and got.utcoffset() == want.utcoffset(), name
        with pytest.raises(pydantic.ValidationError):
            b.model_id = 0  # frozen


@pytest.fixture
def registry(service):
    """Models and deployments with and without tags, NULL columns, live changes and live requests."""
    plain = make_model(service)
    tagged = make_model(service)
    service.set_model_tags(tagged, {"stage": "production", "email": "a@slac.stanford.edu", "ünïcode": "✓"})
    first = make_deployment(service, plain, image=None, asset_dir=None)
    second = make_deployment(service, plain, asset_dir="/data/assets")
    service.set_deployment_tags(second, {"ready_to_deploy": "true"})
    service.set_live(first)
    service.update_model(plain, require_approval=True)
    pending = service.request_live(second, reason="better fit")
    other = service.with_actor("approver")
    rejected = service.request_live(make_deployment(service, plain), reason="try")
    other.reject_live(rejected.request_id, reason="not yet")
    other.approve_live(pending.request_id, reason="looks good")
    service.request_live(make_deployment(service, plain), reason="still pending")
    return plain, tagged


class TestListingsEqualValidatedRecords:
    def test_models(self, service, model_db, registry):
        expected = validated(model_db, Model.__table__, ModelRecord, Model.__table__.c.model_id)
        assert {m.require_approval for m in expected} == {True, False}
        assert {} in [m.tags for m in expected] and any(m.tags for m in expected)
        assert_same(service.get_models(), expected)
        assert_same(service.list_models().items, expected)
        assert_same(service.get_models(tags={"stage": "production"}), [expected[1]])

    def test_deployments(self, service, model_db, registry):
        plain, _ = registry
        table = Deployment.__table__
        expected = validated(model_db, table, DeploymentRecord, table.c.deployment_id)
        assert {d.image for d in expected} >= {None} and {d.asset_dir for d in expected} >= {None, "/data/assets"}
        assert {d.is_live for d in expected} == {True, False}
        assert_same(service.get_deployments(model_id=plain), expected)
        assert_same(service.list_deployments(model_id=plain).items, expected)
        assert_same(service.list_deployments(limit=1, after=expected[0].deployment_id).items, expected[1:2])

    def test_models_with_live(self, service, model_db, registry):
        models = validated(model_db, Model.__table__, ModelRecord, Model.__table__.c.model_id)
        table = Deployment.__table__
        lives = {d.model_id: d for d in validated(model_db, table, DeploymentRecord, table.c.deployment_id) if d.is_live}
        expected = [ModelWithLive.model_validate({"model": m.model_dump(), "live_deployment": lives.get(m.model_id)})
                    for m in models]  # fmt: skip
        assert {e.live_deployment is None for e in expected} == {True, False}
        built = service.list_models_with_live().items
        assert_same(built, expected)
        assert_same(service.list_models_with_live(limit=1, after=models[0].model_id).items, expected[1:2])
        assert_same(service.list_models_with_live(tags={"stage": "production"}).items, expected[1:2])
        assert_same([b.model for b in built], models)
        assert_same([b.live_deployment for b in built if b.live_deployment], [lives[m.model_id] for m in models
                                                                              if m.model_id in lives])  # fmt: skip

    def test_audit_events(self, service, model_db, registry):
        table = AuditEvent.__table__
        expected = validated(model_db, table, AuditEventRecord, table.c.event_id)
        assert any(e.before is None for e in expected) and any(isinstance(e.after, dict) for e in expected)
        assert_same(service.list_audit_events(limit=1000).items, expected)
        assert_same(service.list_events(limit=1000).items, expected)

    def test_live_requests(self, service, model_db, registry):
        table = LiveRequest.__table__
        expected = validated(model_db, table, LiveRequestRecord, table.c.request_id)
        assert {r.state for r in expected} == {"pending", "approved", "rejected"}
        assert None in [r.decided_at for r in expected] and any(r.decided_at for r in expected)
        assert_same(service.list_live_requests().items, expected)


class TestRecordsBuilder:
    KEYS = tuple(DeploymentRecord.model_fields)

    def row(self, **overrides):
        values = dict(deployment_id=1, model_id=2, version="1.0", deploy_date=datetime(2026, 1, 2, tzinfo=UTC),
                      package_import_name="pkg", asset_dir=None, source="s", sha256="ab" * 32, image=None,
                      is_live=True, tags=None)  # fmt: skip
        values.update(overrides)
        return tuple(values[k] for k in self.KEYS)

    def test_columns_in_another_order_and_extra_columns(self):
        keys = ("extra",) + tuple(reversed(self.KEYS))
        built, = records_builder(DeploymentRecord, keys)([("ignored",) + tuple(reversed(self.row()))])
        assert built == DeploymentRecord.model_validate(dict(zip(self.KEYS, self.row())))
        assert list(built.model_dump()) == list(DeploymentRecord.model_fields)

    def test_missing_column_takes_the_default_and_is_not_set(self):
        keys = tuple(k for k in self.KEYS if k != "tags")
        built, = records_builder(DeploymentRecord, keys)([tuple(v for k, v in zip(self.KEYS, self.row()) if k != "tags")])
        expected = DeploymentRecord.model_validate(dict(zip(keys, built.model_dump().values())))
        assert built == expected and built.tags == {} and "tags" not in built.model_fields_set
        assert built.model_fields_set == expected.model_fields_set

    def test_null_tags_are_a_new_empty_dict_each(self):
        a, b = records_builder(DeploymentRecord, self.KEYS)([self.row(), self.row()])
        assert a.tags == {} and a.tags is not b.tags

    def test_a_missing_required_column_or_a_nested_record_is_refused(self):
        with pytest.raises(TypeError, match="needs a column 'version'"):
            records_builder(DeploymentRecord, tuple(k for k in self.KEYS if k != "version"))
        with pytest.raises(TypeError, match="nested record"):
            records_builder(FlowOfFlowsRecord, tuple(FlowOfFlowsRecord.model_fields))
