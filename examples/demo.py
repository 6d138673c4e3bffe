"""The registry on embedded defaults: no server to start by hand.

Runs the spec's example against the sample package in examples/my-model:
registers a model and a project, then stores the package as a deployment
(built to an sdist, inspected without running it, installed into its own
environment, its Prefect flow loaded there and registered with Prefect's
ephemeral server), and prints the registry through the `lume-services` CLI.
Safe to re-run: the same artifact returns the existing deployment.

    make demo            # LUME_HOME=.lume-home python examples/demo.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from lume_services import config
from lume_services.cli.main import cli
from lume_services.models import Model

SAMPLE = Path(__file__).resolve().parent / "my-model"


def progress(step: str, done: int | None, total: int | None) -> None:
    if done is None:
        print(f"  -> {step}", file=sys.stderr, flush=True)


def main() -> None:
    started = time.monotonic()
    ctx = config.configure()
    print(f"Registry: {ctx.model_db().safe_url()}  (LUME_HOME={ctx.settings.home})\n")
    model = Model.create_model(
        author="Jackie Garrahan", laboratory="slac", facility="lcls", beampath="cu_hxr", description="test_model"
    )
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
    for args in (["models", "list"], ["projects", "list"], ["deployments", "list"]):
        print(f"$ lume-services {' '.join(args)}")
        cli.main(args, prog_name="lume-services", standalone_mode=False)
        print()
    print(f"Done in {time.monotonic() - started:.1f} s.")


if __name__ == "__main__":
    main()
