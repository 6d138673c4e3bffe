"""``lume-services deployments variables`` and ``check-mapping``: a deployment's inputs and outputs."""

from __future__ import annotations

from typing import Any

import click

from lume_services.cli.output import ID, get_service, handle_errors, json_option, print_json, render_table

HEADERS = ["Direction", "Name", "Kind", "Default", "Range", "Unit", "Read-only"]


def variables_table(variables: Any) -> str:
    """Every input and output as one table."""
    return render_table(HEADERS, variable_rows(variables))


def variable_rows(variables: Any) -> list[list[str]]:
    """One row per variable: direction, name, kind, default, range, unit, read-only."""
    rows = []
    for direction, section in (("input", variables.inputs), ("output", variables.outputs)):
        for v in section.values():
            default = "" if v.default is None else repr(v.default)
            rows.append([direction, v.name, v.kind, default, "" if v.range is None else v.describe_range(with_unit=False),
                         v.unit or "", "yes" if v.read_only else ""])  # fmt: skip
    return rows


@click.command("variables")
@click.argument("deployment_id", type=ID)
@json_option
@handle_errors
def variables_command(deployment_id: int, as_json: bool) -> None:
    """Show DEPLOYMENT_ID's input and output variables, as its package declares them."""
    variables = get_service().get_variables(deployment_id)
    if as_json:
        print_json({"deployment_id": deployment_id, **variables.stored()})
        return
    if not variables.declared:
        click.echo(f"Deployment {deployment_id}'s package declares no variables.")
        return
    click.echo(f"Read from {variables.source_file} ({variables.format}):")
    click.echo(variables_table(variables))


@click.command("check-mapping")
@click.argument("deployment_id", type=ID)
@click.argument("mapping_file", type=click.File("r", encoding="utf-8"))
@json_option
@handle_errors
def check_mapping_command(deployment_id: int, mapping_file: Any, as_json: bool) -> None:
    """Check a deployment template's PV mapping (pv_mapping.yaml) against DEPLOYMENT_ID's variables.

    Exit 0 when every model input is mapped or constant, every mapped name
    is the model's, and every formula parses and declares its symbols; exit
    1 with the list of problems otherwise.
    """
    from lume_services.variables.mapping import check_mapping

    variables = get_service().get_variables(deployment_id)
    findings = check_mapping(variables, mapping_file.read())
    if as_json:
        print_json({"deployment_id": deployment_id, "ok": not findings,
                    "problems": [{**f.__dict__, "message": str(f)} for f in findings]})  # fmt: skip
    elif not findings:
        click.echo(f"{mapping_file.name}: every input of deployment {deployment_id} is mapped or constant; "
                   "every name and formula checks out.")  # fmt: skip
    else:
        click.echo(f"{mapping_file.name}: {len(findings)} problem(s) against deployment {deployment_id}:")
        for finding in findings:
            click.echo(f"  {finding}")
    if findings:
        raise SystemExit(1)
