"""``lume-services models``: list, show and create registered models."""

from __future__ import annotations

from typing import Any, Optional

import click

from lume_services.cli.deployments import DEPLOYMENT_COLUMNS as LISTING_COLUMNS
from lume_services.cli.output import (
    ID,
    Column,
    after_option,
    dump,
    get_service,
    handle_errors,
    json_option,
    limit_option,
    print_fields,
    print_json,
    print_next_page,
    print_table,
)
from lume_services.cli.tags import describe_tags, tag_filters, tag_option

FIELDS = ("author", "laboratory", "facility", "beampath")

MODEL_COLUMNS: list[Column] = [
    ("ID", lambda r: r.model.model_id),
    ("Author", lambda r: r.model.author),
    ("Laboratory", lambda r: r.model.laboratory),
    ("Facility", lambda r: r.model.facility),
    ("Beampath", lambda r: r.model.beampath),
    ("Live version", lambda r: r.live_deployment.version if r.live_deployment else None),
    ("Description", lambda r: r.model.description),
]

# A model's deployments: the deployments listing without the model column.
DEPLOYMENT_COLUMNS: list[Column] = [c for c in LISTING_COLUMNS if c[0] != "Model"]


@click.group()
def models() -> None:
    """List, show and create registered models."""


@models.command("list")
@click.option(
    "--search", help="Text that author, laboratory, facility, beampath or description contains (any case)."
)
@click.option("--author", help="Only models by this author (exact).")
@click.option("--laboratory", help="Only models of this laboratory (exact).")
@click.option("--facility", help="Only models of this facility (exact).")
@click.option("--beampath", help="Only models of this beampath (exact).")
@tag_option
@limit_option
@after_option("model")
@json_option
@handle_errors
def list_models(
    search: Optional[str], tags: Any, limit: int, after: Optional[int], as_json: bool, **fields: Any
) -> None:
    """List models in id order, with their live version."""
    filters = {name: value for name, value in fields.items() if value is not None} | tag_filters(tags)
    page = get_service().list_models_with_live(limit=limit, after=after, search=search, **filters)
    if as_json:
        print_json({"items": [dump(item) for item in page.items], "next_after": page.next_after})
        return
    print_table(page.items, MODEL_COLUMNS, empty="No models match.")
    print_next_page(page.next_after, "models")


def model_fields(record: Any) -> list[tuple[str, Any]]:
    return [
        ("Model id", record.model_id),
        ("Created (UTC)", record.created),
        *((name.capitalize(), getattr(record, name)) for name in FIELDS),
        ("Description", record.description),
        ("Tags", describe_tags(record.tags) or None),
    ]


@models.command("show")
@click.argument("model_id", type=ID)
@json_option
@handle_errors
def show_model(model_id: int, as_json: bool) -> None:
    """Show a model and its deployments, oldest first."""
    from lume_services.models.model import Model

    model = Model(model_id, model_db_service=get_service())
    deployments = model.deployments
    if as_json:
        print_json({"model": dump(model.metadata), "deployments": [dump(d) for d in deployments]})
        return
    print_fields(model_fields(model.metadata))
    # Its own block: the label is wider than the others, whose alignment scripts may rely on.
    click.echo()
    print_fields([("Requires approval", model.metadata.require_approval)])
    click.echo("\nDeployments (oldest first):")
    print_table(deployments, DEPLOYMENT_COLUMNS, empty="No deployments yet.")


@models.command("create")
@click.option("--author", required=True, help="Who made the model.")
@click.option("--laboratory", required=True, help="Laboratory, e.g. slac.")
@click.option("--facility", required=True, help="Facility, e.g. lcls.")
@click.option("--beampath", required=True, help="Beampath, e.g. cu_hxr.")
@click.option("--description", required=True, help="What the model is (part of its identity).")
@json_option
@handle_errors
def create_model(as_json: bool, **fields: str) -> None:
    """Register a model, or find the identical one already registered."""
    from lume_services.models.model import Model

    model = Model.create_model(**fields, model_db_service=get_service())
    if as_json:
        print_json(dump(model.metadata))
        return
    click.echo(f"Model {model.model_id} is registered.")
    print_fields(model_fields(model.metadata))


@models.command("protect")
@click.argument("model_id", type=ID)
@json_option
@handle_errors
def protect(model_id: int, as_json: bool) -> None:
    """Require an approved request to change a model's live deployment (two people decide)."""
    record = get_service().update_model(model_id, require_approval=True)
    if as_json:
        print_json(dump(record))
        return
    click.echo(
        f"Model {record.model_id} is protected: its live deployment changes only when another person "
        "approves a request (`lume-services deployments request-live ID --reason TEXT`, "
        "then `lume-services requests approve REQUEST_ID`)."
    )


@models.command("unprotect")
@click.argument("model_id", type=ID)
@json_option
@handle_errors
def unprotect(model_id: int, as_json: bool) -> None:
    """Let `deployments set-live` change a model's live deployment again without approval."""
    record = get_service().update_model(model_id, require_approval=False)
    if as_json:
        print_json(dump(record))
        return
    click.echo(
        f"Model {record.model_id} is not protected: `lume-services deployments set-live ID` "
        "changes its live deployment without approval."
    )
