"""Models mirrored from another registry (the MLflow bridge): their state in two reads, one write per model.

``mirror_state(tags=...)`` reads every model carrying these tags and all their
deployments in two statements, whatever their number, so that a sync that
finds nothing changed costs a constant number of statements.
``store_mirrored_model(plan)`` writes one model's changes (the model, its new
deployments with tags and variables, tag changes, the live deployment) in
ONE transaction through the write path: the model is locked, the live rule
and approval gate are :meth:`Change.make_live`'s, every change has its audit
event. A failure leaves nothing of that model written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import bindparam, select

from lume_services.errors import ConflictError, ValidationError
from lume_services.services.models.db.schema import Deployment, Model
from lume_services.services.models.model_ops import FIND_MODEL
from lume_services.services.models.queries import (
    deployment_values,
    insert_unless_exists,
    upsert_deployment,
    variables_values,
)
from lume_services.services.models.records import UNSET, DeploymentRecord, ModelRecord
from lume_services.services.models.tag_ops import _apply
from lume_services.services.models.tags import DEPLOYMENT_TAGS, MODEL_TAGS, check_tags
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_actor, check_values
from lume_services.services.models.writes import Change
from lume_services.variables import Variables

MODELS, DEPLOYMENTS = Model.__table__, Deployment.__table__
_MODEL_TAGS = select(MODELS.c.tags).where(MODELS.c.model_id == bindparam("_id"))
_DEPLOYMENT_TAGS = select(DEPLOYMENTS.c.tags).where(DEPLOYMENTS.c.deployment_id == bindparam("_id"))
_VERSION_ID = select(DEPLOYMENTS.c.deployment_id).where(
    DEPLOYMENTS.c.model_id == bindparam("_model_id"), DEPLOYMENTS.c.version == bindparam("_version")
)


@dataclass(frozen=True)
class MirroredDeployment:
    """A new deployment of a mirrored model (a record: no environment, no flow)."""

    version: str
    source: str
    sha256: str
    package_import_name: str
    tags: dict[str, str] = field(default_factory=dict)
    variables: Optional[Variables] = None


@dataclass(frozen=True)
class MirrorPlan:
    """What to write for one mirrored model; ``live`` is a version, None (nothing live) or UNSET (unchanged)."""

    model: Mapping[str, str]  # the five identity fields (read only when model_id is None)
    model_id: Optional[int]
    model_tags: Mapping[str, str]  # the tags the model must have (its own tags outside ``owned`` stay)
    owner: tuple[str, str]  # (tag key, value) that says which mirrored model this is
    new_deployments: Sequence[MirroredDeployment] = ()
    deployment_tags: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    live: Any = UNSET
    live_actor: Optional[str] = None
    live_reason: Optional[str] = None


@dataclass(frozen=True)
class MirroredModel:
    model: ModelRecord
    deployments: list[DeploymentRecord]


class MirrorOps(ServiceBase):
    """Mixin of ModelDBService: mirror_state, store_mirrored_model."""

    def mirror_state(self, *, tags: Mapping[str, str]) -> list[MirroredModel]:
        """Every model carrying ``tags`` with all its deployments (two statements), in model_id order."""
        wanted = check_tags(tags)
        models = MODEL_TAGS.filter(select(MODELS), wanted).order_by(MODELS.c.model_id)
        ids = MODEL_TAGS.filter(select(MODELS.c.model_id), wanted)
        deployments = select(DEPLOYMENTS).where(DEPLOYMENTS.c.model_id.in_(ids)).order_by(DEPLOYMENTS.c.deployment_id)

        def work(conn: Any) -> list[MirroredModel]:
            found = {row.model_id: MirroredModel(ModelRecord.model_validate(row), []) for row in conn.execute(models)}
            for row in conn.execute(deployments):
                found[row.model_id].deployments.append(DeploymentRecord.model_validate(row))
            return list(found.values())

        return self._read("mirror_state", work, core=True)

    def store_mirrored_model(self, plan: MirrorPlan) -> int:
        """Write one mirrored model's changes in one transaction; returns its model_id."""
        if not isinstance(plan, MirrorPlan):
            raise ValidationError("plan", plan, "expected a MirrorPlan (lume_services.mlflow builds them)")
        identity = check_values(Model, dict(plan.model)) if plan.model_id is None else {}
        model_tags = check_tags(dict(plan.model_tags))
        new = [_checked(plan, d) for d in plan.new_deployments]
        retag = {d: check_tags(dict(t)) for d, t in plan.deployment_tags.items()}
        actor = None if plan.live_actor is None else check_actor(plan.live_actor)

        def work(change: Change) -> int:
            model_id, created = (plan.model_id, False) if plan.model_id else _model(change, identity)
            locked = change.lock_model(model_id)
            _retag_model(change, model_id, plan.owner, model_tags, replace=created or plan.model_id is not None)
            for values, variables, tags in new:
                deployment_id = upsert_deployment(change, {**values, "model_id": model_id}, variables)
                _retag(change, DEPLOYMENT_TAGS, "deployment", deployment_id, model_id, tags)
            for deployment_id, tags in retag.items():
                _retag(change, DEPLOYMENT_TAGS, "deployment", deployment_id, model_id, tags)
            if plan.live is not UNSET:
                target = None
                if plan.live is not None:
                    target = change.execute(_VERSION_ID, {"_model_id": model_id, "_version": plan.live}).scalar_one()
                change.make_live(locked, target, plan.live, set_by=actor, reason=plan.live_reason)
            return model_id

        return self._write("store_mirrored_model", work, core=True)


def _checked(plan: MirrorPlan, d: MirroredDeployment) -> tuple[dict[str, Any], Any, dict[str, str]]:
    values = deployment_values(
        model_id=plan.model_id or 1, version=d.version, source=d.source, sha256=d.sha256,
        package_import_name=d.package_import_name, image=None, is_live=False, asset_dir=None,
    )  # fmt: skip
    values.pop("model_id")
    return values, variables_values(d.variables), check_tags(d.tags)


def _model(change: Change, identity: dict[str, Any]) -> tuple[int, bool]:
    """The model with these fields: (its id, whether it is new)."""
    row = {**identity, "created": change.now}
    new_id = insert_unless_exists(change.unit, MODELS, row)
    if new_id is None:
        return change.execute(FIND_MODEL, identity).scalar_one(), False
    change.record("model.created", "model", new_id, model_id=new_id, after={**row, "model_id": new_id})
    return new_id, True


def _retag_model(change: Change, model_id: int, owner: tuple[str, str], tags: dict[str, str], *, replace: bool) -> None:
    before = change.execute(_MODEL_TAGS, {"_id": model_id}).scalar_one() or {}
    key, value = owner
    if before.get(key) not in (None, value):
        raise ConflictError(
            f"Model {model_id!r} has the same author, laboratory, facility, beampath and description as "
            f"{value!r} but is {key}={before[key]!r}; nothing of {value!r} was written. Map a field "
            "(e.g. description: mlflow:name) so that each mirrored model differs."
        )
    after = tags if replace else {**before, **tags}  # a model found by its fields keeps its own tags
    if after != before:
        _apply(change, MODEL_TAGS, "model", model_id, model_id, before, after)


def _retag(change: Change, tagging: Any, entity: str, entity_id: int, model_id: int, tags: dict[str, str]) -> None:
    before = change.execute(_DEPLOYMENT_TAGS, {"_id": entity_id}).scalar_one() or {}
    if dict(tags) != before:
        _apply(change, tagging, entity, entity_id, model_id, before, dict(tags))
