"""``lume-services projects``: the projects flows are registered under."""

from __future__ import annotations

import click

from lume_services.cli.output import (
    Column,
    dump,
    get_service,
    handle_errors,
    json_option,
    print_json,
    print_table,
)

PROJECT_COLUMNS: list[Column] = [
    ("Name", lambda p: p.project_name),
    ("Description", lambda p: p.description),
]


@click.group()
def projects() -> None:
    """List and create projects."""


@projects.command("list")
@json_option
@handle_errors
def list_projects(as_json: bool) -> None:
    """List projects by name."""
    records = get_service().get_projects()
    if as_json:
        print_json([dump(p) for p in records])
        return
    print_table(records, PROJECT_COLUMNS, empty="No projects yet.")


@projects.command("create")
@click.argument("name")
@click.option("--description", required=True, help="What the project is for.")
@json_option
@handle_errors
def create_project(name: str, description: str, as_json: bool) -> None:
    """Create a project (storing the identical project again changes nothing)."""
    service = get_service()
    service.store_project(project_name=name, description=description)
    record = service.get_project(project_name=name)
    if as_json:
        print_json(dump(record))
        return
    click.echo(f"Project {record.project_name!r} is stored.")
