"""Setting and removing the tags of models and deployments (audited, through the write path)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, select

from lume_services.services.models.db.schema import Deployment, Model
from lume_services.services.models.records import DeploymentRecord, ModelRecord
from lume_services.services.models.tags import DEPLOYMENT_TAGS, MODEL_TAGS, Tagging, check_keys, check_tags
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import check_value
from lume_services.services.models.writes import Change

MODELS, DEPLOYMENTS = Model.__table__, Deployment.__table__
_ONE_MODEL = select(MODELS).where(MODELS.c.model_id == bindparam("_id"))
_ONE_DEPLOYMENT = select(DEPLOYMENTS).where(DEPLOYMENTS.c.deployment_id == bindparam("_id"))


class TagOps(ServiceBase):
    """Mixin of ModelDBService: set_/remove_model_tags, set_/remove_deployment_tags."""

    def set_model_tags(self, model_id: int, tags: Mapping[str, str]) -> ModelRecord:
        """Add or change these tags of a model (others stay); returns the model with all its tags."""
        check_value(Model, "model_id", model_id)
        given = check_tags(tags)
        return self._retag("set_model_tags", "model", model_id, lambda old: {**old, **given})

    def remove_model_tags(self, model_id: int, keys: Iterable[str]) -> ModelRecord:
        """Remove these tags of a model (absent keys are ignored)."""
        check_value(Model, "model_id", model_id)
        gone = set(check_keys(keys))
        return self._retag("remove_model_tags", "model", model_id, lambda old: _without(old, gone))

    def set_deployment_tags(self, deployment_id: int, tags: Mapping[str, str]) -> DeploymentRecord:
        """Add or change these tags of a deployment (others stay); returns the deployment."""
        check_value(Deployment, "deployment_id", deployment_id)
        given = check_tags(tags)
        return self._retag("set_deployment_tags", "deployment", deployment_id, lambda old: {**old, **given})

    def remove_deployment_tags(self, deployment_id: int, keys: Iterable[str]) -> DeploymentRecord:
        """Remove these tags of a deployment (absent keys are ignored)."""
        check_value(Deployment, "deployment_id", deployment_id)
        gone = set(check_keys(keys))
        return self._retag(
            "remove_deployment_tags", "deployment", deployment_id, lambda old: _without(old, gone)
        )

    def _retag(self, operation: str, entity: str, entity_id: int, new_tags: Callable[[dict], dict]) -> Any:
        read, tagging, record = (
            (_ONE_MODEL, MODEL_TAGS, ModelRecord)
            if entity == "model"
            else (_ONE_DEPLOYMENT, DEPLOYMENT_TAGS, DeploymentRecord)
        )

        def work(change: Change) -> Any:
            model_id = (
                change.lock_model(entity_id).model_id
                if entity == "model"
                else change.lock_owner(entity_id).model_id
            )
            row = dict(change.execute(read, {"_id": entity_id}).mappings().one())
            before = row["tags"] or {}
            after = new_tags(before)
            if after != before:
                _apply(change, tagging, entity, entity_id, model_id, before, after)
            return record.model_validate({**row, "tags": after})

        return self._write(operation, work, core=True)


def _apply(
    change: Change, tagging: Tagging, entity: str, entity_id: int, model_id: int,
    before: dict[str, str], after: dict[str, str],
) -> None:  # fmt: skip
    tagging.replace(change.unit, entity_id, before, after)
    keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    change.record(
        f"{entity}.tags_changed", entity, entity_id, model_id=model_id,
        before={"tags": {k: before[k] for k in keys if k in before}},
        after={"tags": {k: after[k] for k in keys if k in after}},
    )  # fmt: skip


def _without(tags: dict[str, str], gone: set[str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k not in gone}
