"""Validate a flow-of-flows spec against the registry, then register and store it.

Every check runs before anything is written: each step must name a registered
flow, each mapped parameter must be a parameter of its step's flow, its
parent must be an earlier step, and a parent task must be a task of that
parent's flow (read from the flow's module in its own environment); a
composition stored as a model version must also be a valid, unused or
identical version of an existing model. Then the parent Prefect deployment
is registered and the ``flow`` and ``flow_of_flows`` rows (with the
``deployment`` row of a model version) written in one transaction, undoing
the registration if that fails.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional, Union

from lume_services.environment.runner import describe_flow
from lume_services.errors import (
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    FlowNotFoundError,
    ValidationError,
)
from lume_services.flows.spec import COMPOSITE_PACKAGE, ComposingFlow, FlowOfFlowsSpec
from lume_services.models.registration import refuse_unapproved_live, same_version, undo_unrecorded
from lume_services.services.models.queries import deployment_values
from lume_services.services.models.records import FlowRecord


def compose(
    spec: Union[FlowOfFlowsSpec, str, Path],
    *,
    model_id: Optional[int] = None,
    version: Optional[str] = None,
    is_live: bool = True,
    context: Any = None,
    model_db_service: Any = None,
) -> str:
    """Register the composition; returns the parent flow id (a Prefect deployment id).

    With ``model_id`` and ``version`` the composition is stored as that
    version of the model (a deployment row owning the parent flow, live
    unless ``is_live=False``), so ``Model(deployment_id=...)`` loads and
    runs it. Without them it is stored on its own, found by its flow id.
    ``model_db_service`` replaces the context's (a Model passes its own).
    """
    from lume_services import config

    ctx = context or config.get_context()
    source = str(Path(spec).resolve()) if isinstance(spec, (str, Path)) else None
    if not isinstance(spec, FlowOfFlowsSpec):
        spec = FlowOfFlowsSpec.from_yaml(spec)
    svc, scheduling = model_db_service or ctx.model_db_service(), ctx.scheduling_service()
    project = svc.get_project(project_name=spec.project_name)
    steps = [{k: v for k, v in s.items() if not k.startswith("_")} for s in _resolve_steps(spec, svc, ctx)]
    composing = [
        {"flow_id": s["flow_id"], "mapped_parameters": s["mapped_parameters"] or None} for s in steps
    ]
    digest = composition_sha256(spec, composing)
    deployment = _deployment(svc, spec, digest, model_id, version, is_live, source)
    if deployment is None:
        _require_same_or_new(svc, spec, composing)
    scheduling.create_project(project.project_name, description=project.description)
    parent_id = scheduling.register_composite(
        name=spec.name, project_name=spec.project_name, steps=steps, digest=digest, model_id=model_id,
        version=version, description=" -> ".join(s["name"] for s in steps),
    )  # fmt: skip
    with undo_unrecorded(svc, scheduling, parent_id):
        svc.store_flow_of_flows(
            parent_flow_id=parent_id, flow_name=spec.name, project_name=spec.project_name,
            composing_flows=composing, deployment=deployment,
        )  # fmt: skip
    return parent_id


def composition_sha256(spec: FlowOfFlowsSpec, composing: list[dict[str, Any]]) -> str:
    """The identity of a composition: its name, project and resolved steps."""
    canonical = json.dumps(
        {"name": spec.name, "project_name": spec.project_name, "steps": composing},
        sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()


def _deployment(
    svc: Any,
    spec: FlowOfFlowsSpec,
    digest: str,
    model_id: Optional[int],
    version: Optional[str],
    is_live: bool,
    source: Optional[str],
) -> Optional[dict[str, Any]]:
    """The deployment row a versioned composition is stored as (checked before Prefect is touched)."""
    if model_id is None and version is None:
        return None
    if model_id is None or version is None:
        missing, given = ("model_id", version) if model_id is None else ("version", model_id)
        raise ValidationError(
            missing, None, f"a flow of flows stored as a model version needs both model_id and version "
            f"(got only {'version' if model_id is None else 'model_id'} {given!r})",
        )  # fmt: skip
    deployment = deployment_values(
        model_id=model_id, version=version, sha256=digest, source=source or f"flow-of-flows:{spec.name}",
        package_import_name=COMPOSITE_PACKAGE, image=None, is_live=is_live, asset_dir=None,
    )  # fmt: skip
    protected = svc.get_model(model_id=model_id).require_approval  # ModelNotFoundError before anything is registered
    refuse_unapproved_live(model_id, protected, is_live, same_version(svc, model_id, version, digest))
    return deployment


def _require_same_or_new(svc: Any, spec: FlowOfFlowsSpec, composing: list[dict[str, Any]]) -> None:
    """Refuse to re-register a stored composition's name with other steps (it would overwrite it in Prefect)."""
    for flow in svc.get_flows(flow_name=spec.name, project_name=spec.project_name, composite=True):
        if flow.deployment_id is not None:
            continue
        stored = [
            {"flow_id": s.flow_id, "mapped_parameters": s.mapped_parameters}
            for s in svc.get_flow_of_flows(parent_flow_id=flow.flow_id)
        ]
        if stored != composing:
            raise FlowAlreadyExistsError(
                flow.flow_id,
                f"as flow of flows {spec.name!r} in project {spec.project_name!r} with other steps; "
                "give the new composition another name, or store it as a model version (model_id, version)",
            )


def _resolve_steps(spec: FlowOfFlowsSpec, svc: Any, ctx: Any) -> list[dict[str, Any]]:
    scheduling = ctx.scheduling_service()
    steps: list[dict[str, Any]] = []
    for position, item in enumerate(spec.composing_flows, start=1):
        flow = _find_flow(svc, item, spec.project_name)
        schema = scheduling.read_flow(flow.flow_id).parameter_openapi_schema or {}
        known = set(schema.get("properties", {}))
        for param, mapping in item.mapped_parameters.items():
            if param not in known:
                raise ValidationError(
                    "mapped_parameters", param,
                    f"step {position} ({flow.flow_name!r}) has no parameter {param!r}; its parameters are "
                    f"{', '.join(sorted(known)) or '(none)'}",
                )  # fmt: skip
            parent = next((s for s in reversed(steps) if s["name"] == mapping.parent_flow_name), None)
            if parent is None:
                raise ValidationError(
                    "parent_flow_name", mapping.parent_flow_name,
                    f"step {position} maps {param!r} from a flow that is not an earlier step "
                    f"(earlier steps: {', '.join(s['name'] for s in steps) or 'none'})",
                )  # fmt: skip
            if mapping.parent_task_name:
                _require_task(svc, ctx, parent, mapping.parent_task_name)
        steps.append({
            "position": position, "name": flow.flow_name, "flow_id": flow.flow_id, "tasks_needed": [],
            "mapped_parameters": {k: v.model_dump() for k, v in item.mapped_parameters.items()},
        })  # fmt: skip
    return steps


def _find_flow(svc: Any, item: ComposingFlow, default_project: str) -> FlowRecord:
    """A step's flow: by id, or by name in the project (the live deployment's, else the latest)."""
    if item.flow_id:
        flow = svc.get_flow(flow_id=item.flow_id)
        if flow.composite:
            raise ValidationError(
                "flow_id", item.flow_id,
                f"it is the flow of flows {flow.flow_name!r}; a step must be a model's flow "
                "(list its steps in this composition instead)",
            )  # fmt: skip
        return flow
    project = item.project_name or default_project
    flows = [
        f
        for f in svc.get_flows(flow_name=item.name, project_name=project, composite=False)
        if f.deployment_id is not None
    ]
    if not flows:
        if svc.get_flows(flow_name=item.name, project_name=project, composite=True):
            raise ValidationError(
                "name", item.name,
                "it is a flow of flows; a step must be a model's flow (list its steps in this composition instead)",
            )  # fmt: skip
        raise FlowNotFoundError({"flow_name": item.name, "project_name": project})
    deployments = {f.deployment_id: svc.get_deployment(deployment_id=f.deployment_id) for f in flows}

    def rank(f: FlowRecord) -> tuple:
        d = deployments[f.deployment_id]
        return (d.is_live, d.deploy_date, d.deployment_id)

    return max(flows, key=rank)


def _require_task(svc: Any, ctx: Any, parent: dict[str, Any], task_name: str) -> None:
    if "_tasks" not in parent:  # described once per step, in its environment's subprocess
        parent["_tasks"] = _tasks_of(svc, ctx, parent["flow_id"])
    if task_name not in parent["_tasks"]:
        raise ValidationError(
            "parent_task_name", task_name,
            f"flow {parent['name']!r} has no task {task_name!r}; its tasks are "
            f"{', '.join(parent['_tasks']) or '(none)'}",
        )  # fmt: skip
    if task_name not in parent["tasks_needed"]:
        parent["tasks_needed"].append(task_name)


def _tasks_of(svc: Any, ctx: Any, flow_id: str) -> list[str]:
    flow = svc.get_flow(flow_id=flow_id)
    deployment = svc.get_deployment(deployment_id=flow.deployment_id)
    env = ctx.environment_manager().get(deployment.sha256)
    if env is None:
        raise DeploymentNotFoundError({"deployment_id": deployment.deployment_id, "environment": "missing"})
    described = describe_flow(
        env.python, deployment.package_import_name, home=ctx.settings.home,
        timeout=ctx.settings.environment.describe_timeout, package=flow.flow_name,
    )  # fmt: skip
    return list(described.get("tasks", []))


def run_flow_of_flows(
    parent_flow_id: str,
    parameters: Optional[dict[str, dict[str, Any]]] = None,
    *,
    timeout: Optional[float] = None,
    validate: str = "error",
) -> Any:
    """Run a composed flow of flows and return its result.

    ``parameters`` maps a step's flow name to that step's own parameters,
    checked against that step's input variables first (``validate`` as in
    ``Model.run``): a refused run submits nothing.
    """
    from lume_services import config
    from lume_services.models.inputs import check_flow_inputs

    ctx = config.get_context()
    composite = {"parameters": parameters or {}}
    check_flow_inputs(ctx.model_db_service(), parent_flow_id, composite, validate)
    return ctx.scheduling_service().run_and_return(parent_flow_id, composite, timeout=timeout)
