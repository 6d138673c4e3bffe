"""A run's parameters checked against the input variables of what it runs, before it is submitted.

A deployment's flow is checked against that deployment's variables; a flow
of flows takes parameters per step (keyed by the step's flow name), each
checked against its step's deployment (one statement for all steps).
See :mod:`lume_services.variables.checks` for the rules and ``validate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lume_services.services.models.records import FlowOfFlowsRecord
from lume_services.variables.checks import check_inputs, check_mode


def check_step_inputs(
    svc: Any, steps: Sequence[FlowOfFlowsRecord], parameters: Any, validate: str
) -> None:
    """Each step's parameters against its deployment's input variables."""
    if check_mode(validate) == "none" or not isinstance(parameters, dict):
        return
    owners = {s.flow.flow_name: s.flow.deployment_id for s in steps if s.flow.deployment_id is not None}
    wanted = {owners[name] for name in parameters if name in owners}
    variables = svc.get_variables_of(wanted) if wanted else {}
    for name, step_parameters in parameters.items():
        if name in owners:
            check_inputs(variables[owners[name]], step_parameters, validate=validate)


def check_flow_inputs(svc: Any, flow_id: str, parameters: Any, validate: str) -> None:
    """The parameters of a run of registered flow ``flow_id`` (a flow of flows: per step)."""
    if check_mode(validate) == "none":
        return
    flow = svc.get_flow(flow_id=flow_id)
    if flow.composite:
        per_step = parameters.get("parameters") if isinstance(parameters, dict) else None
        check_step_inputs(svc, svc.get_flow_of_flows(parent_flow_id=flow_id), per_step, validate)
    elif flow.deployment_id is not None:
        check_inputs(svc.get_variables(flow.deployment_id), parameters or {}, validate=validate)
