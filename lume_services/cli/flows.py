"""``lume-services flows``: compose flows of flows from YAML, and run flows."""

from __future__ import annotations

import json
from typing import Optional

import click

from lume_services.cli.output import get_service, handle_errors, json_option, print_json, print_table


@click.group()
def flows() -> None:
    """Compose flows of flows and run registered flows."""


@flows.command("compose")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--model-id", type=int, default=None, help="Store it as a version of this model.")
@click.option("--version", default=None, help="The model version it is stored as (with --model-id).")
@click.option("--live/--not-live", default=True, show_default=True, help="Make that version live.")
@json_option
@handle_errors
def compose_command(
    file: str, model_id: Optional[int], version: Optional[str], live: bool, as_json: bool
) -> None:
    """Validate FILE (flow-of-flows YAML), register it with Prefect and store it.

    With --model-id and --version it becomes that version of the model, so
    `Model(deployment_id=...)` loads and runs it like any deployment.
    """
    if not live and model_id is None:
        raise click.UsageError("--not-live applies to a model version: give --model-id and --version too.")
    from lume_services.flows.compose import compose

    service = get_service()
    parent = compose(file, model_id=model_id, version=version, is_live=live)
    steps = service.get_flow_of_flows(parent_flow_id=parent)
    deployment_id = service.get_flow(flow_id=parent).deployment_id
    if as_json:
        print_json(
            {
                "flow_id": parent,
                "deployment_id": deployment_id,
                "steps": [s.model_dump(mode="json") for s in steps],
            }
        )
        return
    owner = f" (deployment {deployment_id} of model {model_id}, version {version})" if deployment_id else ""
    click.echo(f"Flow of flows {parent}{owner} composed of:")
    print_table(
        steps,
        [("Position", lambda s: s.position), ("Flow", lambda s: s.flow.flow_name), ("Flow id", lambda s: s.flow_id),
         ("Mapped parameters", lambda s: ", ".join(sorted(s.mapped_parameters or {})))],
        empty="(no steps)",
    )  # fmt: skip


@flows.command("run")
@click.argument("flow_id")
@click.option("--parameters", "parameters_json", default="{}", help="JSON object of parameters.")
@click.option("--timeout", type=float, default=None, help="Cancel the run after this many seconds.")
@click.option(
    "--validate", type=click.Choice(["error", "warn", "none"]), default="error", show_default=True,
    help="Inputs outside their variables' ranges: refuse the run, log a warning, or do not check variables.",
)  # fmt: skip
@handle_errors
def run_command(flow_id: str, parameters_json: str, timeout: Optional[float], validate: str) -> None:
    """Run FLOW_ID (a flow or a flow of flows), wait, and print its result as JSON.

    Parameters named like the deployment's input variables are checked
    against them first (kind, range, constants); nothing is submitted when
    one is refused.
    """
    try:
        parameters = json.loads(parameters_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--parameters") from None
    from lume_services.config import configure
    from lume_services.models.inputs import check_flow_inputs
    from lume_services.models.recording import RunRecorder

    context = configure()
    service = context.model_db_service()
    check_flow_inputs(service, flow_id, parameters, validate)
    recorder = RunRecorder.for_flow(service, context.scheduling_service(), flow_id, parameters)
    print_json(recorder.run_and_return(timeout=timeout))
