"""The registry on embedded defaults: no server to start by hand.

Runs the spec's example against the sample package in examples/my-model:
registers a model and a project, then stores the package as a deployment
(built to an sdist, inspected without running it, installed into its own
environment, its Prefect flow loaded there and registered with Prefect's
ephemeral server), and prints the registry through the `lume-services` CLI,
with the variables read from the package. Then it runs the deployment and
prints its result, shows an out-of-range input refused before anything is
submitted, and composes a two-step
flow of flows (the second step's input fed from the first step's `evaluate`
task), stores it as version 1.0 of a pipeline model, loads it with
`Model(deployment_id=...)` and runs it. Last it shows the change history:
which deployment of the beampath is live since when and by whom, the audit
trail and a refused compare-and-swap. Safe to re-run: the same artifact
returns the existing deployment and the same composition the existing one.

    make demo            # LUME_HOME=.lume-home python examples/demo.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lume_services import config
from lume_services.cli.main import cli
from lume_services.errors import ValidationError
from lume_services.models import Model

SAMPLE = Path(__file__).resolve().parent / "my-model"
PIPELINE = Path(__file__).resolve().parent / "two-step.yaml"
# Who and where, for both models the demo registers (the spec's example values).
BEAMLINE = dict(author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr")


def progress(step: str, done: int | None, total: int | None) -> None:
    if done is None:
        print(f"  -> {step}", file=sys.stderr, flush=True)


def show_history(model: Model, live: int) -> None:
    """Who made what live, and when; a compare-and-swap that expects a stale live deployment is refused."""
    from lume_services.errors import LiveDeploymentChangedError

    svc = model.model_db_service
    print(f"Change history (actor {svc.actor!r}, from LUME_ACTOR or <user>@<host>):")
    model.set_live(live, expected_live=live, reason="demo: confirm the live version")
    try:
        model.set_live(live, expected_live=None)  # stale on purpose: something is live
    except LiveDeploymentChangedError as exc:
        print(f"  refused as expected: {exc}")
    for args in (
        ["live", "--facility", BEAMLINE["facility"], "--beampath", BEAMLINE["beampath"]],
        ["deployments", "history", str(model.model_id)],
        ["audit", "--model-id", str(model.model_id), "--limit", "5"],
    ):
        print(f"$ lume-services {' '.join(args)}")
        cli.main(args, prog_name="lume-services", standalone_mode=False)
        print()


def main() -> None:
    started = time.monotonic()
    ctx = config.configure()
    print(f"Registry: {ctx.model_db().safe_url()}  (LUME_HOME={ctx.settings.home})\n")
    model = Model.create_model(**BEAMLINE, description="test_model")
    model_db_service = config.context.model_db_service()
    scheduling_service = config.context.scheduling_service()
    project_name = model_db_service.store_project(project_name="test", description="my_description")
    print("Starting Prefect (ephemeral server on first use) and creating the project queue...")
    scheduling_service.create_project(project_name)
    print(f"Storing {SAMPLE} as a deployment of model {model.model_id}:")
    record = model.store_deployment(str(SAMPLE), project_name="test", progress=progress)
    loaded = model.deployment
    print(
        f"\nDeployment {record.deployment_id}: version {record.version}, sha256 {record.sha256[:12]}..., "
        f"image {record.image}\n  flow {loaded.flow.flow_name!r} = Prefect deployment {loaded.flow.flow_id} "
        f"in project {loaded.project.project_name!r}\n"
    )
    for args in (
        ["models", "list"], ["projects", "list"], ["deployments", "list"],
        ["deployments", "variables", str(record.deployment_id)],  # read from the archive, never by running it
    ):  # fmt: skip
        print(f"$ lume-services {' '.join(args)}")
        cli.main(args, prog_name="lume-services", standalone_mode=False)
        print()
    inputs = {"input1": 1.0, "input2": 2.0}
    print(f"Running deployment {record.deployment_id} with {inputs} (in its own environment)...")
    print(f"  result: {model.run_and_return(inputs, timeout=600)}")
    try:
        model.run_and_return({"input1": 99.0}, timeout=600)
    except ValidationError as exc:
        print(f"  refused before submitting, as expected: {exc}")
    print(f"  task 'evaluate': {model.run_and_return(inputs, task_name='evaluate', timeout=600)}\n")
    pipeline = Model.create_model(**BEAMLINE, description="two-step pipeline")
    composite = pipeline.compose(PIPELINE, version="1.0")
    stored = Model(deployment_id=composite.deployment_id)  # loads the composite and its steps
    steps = " -> ".join(f"{s.position}. {s.flow.flow_name}" for s in stored.deployment.flow_of_flows)
    print(
        f"Flow of flows {stored.deployment.flow.flow_id}: {steps}\n  stored as deployment "
        f"{composite.deployment_id} (model {pipeline.model_id}, version {composite.version})"
    )
    out = stored.run_and_return({"my-model": inputs}, timeout=900)
    print(f"  result: {out['result']}\n")
    show_history(model, record.deployment_id)
    print(f"Done in {time.monotonic() - started:.1f} s.")


if __name__ == "__main__":
    main()
