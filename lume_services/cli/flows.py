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
@json_option
@handle_errors
def compose_command(file: str, as_json: bool) -> None:
    """Validate FILE (flow-of-flows YAML), register it with Prefect and store it."""
    from lume_services.flows.compose import compose

    service = get_service()
    parent = compose(file)
    steps = service.get_flow_of_flows(parent_flow_id=parent)
    if as_json:
        print_json({"flow_id": parent, "steps": [s.model_dump(mode="json") for s in steps]})
        return
    click.echo(f"Flow of flows {parent} composed of:")
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
@handle_errors
def run_command(flow_id: str, parameters_json: str, timeout: Optional[float]) -> None:
    """Run FLOW_ID (a flow or a flow of flows), wait, and print its result as JSON."""
    try:
        parameters = json.loads(parameters_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--parameters") from None
    from lume_services.config import configure

    result = configure().scheduling_service().run_and_return(flow_id, parameters, timeout=timeout)
    print_json(result)
