"""Render the model database's MySQL DDL for the docker-compose init file.

    python scripts/update_docker_compose_schema.py build-docker-compose-schema [--filename PATH]
    python scripts/update_docker_compose_schema.py check-docker-compose-schema

The SQL is rendered from the Alembic migrations (offline mode, MySQL
dialect), so the init file creates exactly the tables the migrations create,
in foreign-key order, and stamps ``alembic_version`` so that a later
``lume-services db upgrade`` continues from there. The output is
deterministic: re-running it on a clean checkout leaves git clean.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lume_services.migrations import render_sql  # noqa: E402

DEFAULT_FILE = ROOT / "lume_services" / "docker" / "files" / "model-db-init.sql"
HEADER = (
    "-- Model registry schema for MySQL/MariaDB, rendered from the Alembic migrations by\n"
    "-- `python scripts/update_docker_compose_schema.py build-docker-compose-schema`.\n"
    "-- Do not edit by hand: change the migrations and re-render.\n\n"
)


def render() -> str:
    """Header plus the statements, each ending with ';', and one final newline."""
    return HEADER + render_sql("mysql+pymysql://").strip() + "\n"


@click.group()
def cli() -> None:
    """Maintain lume_services/docker/files/model-db-init.sql."""


@cli.command("build-docker-compose-schema")
@click.option(
    "--filename",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_FILE,
    show_default=True,
    help="Where to write the SQL.",
)
def build(filename: Path) -> None:
    """Write the init SQL."""
    filename.parent.mkdir(parents=True, exist_ok=True)
    filename.write_text(render(), encoding="utf-8")
    click.echo(f"Wrote {filename}")


@cli.command("check-docker-compose-schema")
@click.option(
    "--filename",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_FILE,
    show_default=True,
    help="The SQL file to compare.",
)
def check(filename: Path) -> None:
    """Exit 1 if the init SQL differs from the migrations."""
    if not filename.exists() or filename.read_text(encoding="utf-8") != render():
        raise click.ClickException(
            f"{filename} is out of date; run `python scripts/update_docker_compose_schema.py "
            "build-docker-compose-schema` and commit it."
        )
    click.echo(f"{filename} is current.")


if __name__ == "__main__":
    cli()
