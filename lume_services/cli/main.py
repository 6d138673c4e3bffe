"""The ``lume-services`` click group; each command group lives in its own module."""

from __future__ import annotations

import click

from lume_services import __version__
from lume_services.cli import (
    db,
    deployments,
    doctor,
    events,
    flows,
    history,
    mlflow,
    models,
    projects,
    runs,
    serve,
    tags,
    tokens,
    transfer,
    variables,
    webhooks,
    worker,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="lume-services")
def cli() -> None:
    """lume-services: the registry of particle-accelerator models.

    Settings come from LUME_* environment variables; with no LUME_MODEL_DB__*
    variable the registry is the SQLite file $LUME_HOME/registry.db. Errors
    exit with code 1, usage mistakes with code 2.
    """


cli.add_command(db.db)
cli.add_command(models.models)
cli.add_command(projects.projects)
cli.add_command(deployments.deployments)
deployments.deployments.add_command(variables.variables_command)
deployments.deployments.add_command(variables.check_mapping_command)
deployments.deployments.add_command(tags.deployment_tag_command)
models.models.add_command(tags.model_tag_command)
cli.add_command(history.requests)
cli.add_command(history.live)
cli.add_command(history.audit)
cli.add_command(transfer.import_registry)
cli.add_command(transfer.export_registry)
cli.add_command(worker.worker)
cli.add_command(flows.flows)
cli.add_command(doctor.doctor)
cli.add_command(webhooks.webhooks)
cli.add_command(events.events)
cli.add_command(tokens.tokens)
cli.add_command(serve.serve)
cli.add_command(runs.runs)
cli.add_command(mlflow.mlflow)
