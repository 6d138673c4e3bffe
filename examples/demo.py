"""The registry on embedded defaults: no server to start.

Registers a model, a project, a released version (deployment row) and the
flow row that records its orchestrator registration, makes the version live,
then prints the registry through the `lume-services` CLI. Safe to re-run:
identical rows are found, not duplicated.

    make demo            # LUME_HOME=.lume-home python examples/demo.py
"""

from __future__ import annotations

import hashlib

from lume_services import config
from lume_services.cli.main import cli
from lume_services.models import Model

RELEASE_URL = "https://github.com/jacquelinegarrahan/my-model/releases/download/v{v}/my_model-{v}.tar.gz"


def fake_sha256(version: str) -> str:
    """Stand-in checksum: real ones come from the downloaded archive (store_deployment)."""
    return hashlib.sha256(f"my_model-{version}.tar.gz".encode()).hexdigest()


def main() -> None:
    ctx = config.configure()
    print(f"Registry: {ctx.model_db().safe_url()}\n")
    model = Model.create_model(
        author="Jackie Garrahan",
        laboratory="slac",
        facility="lcls",
        beampath="cu_hxr",
        description="test_model",
    )
    svc = ctx.model_db_service()
    svc.store_project(project_name="test", description="my_description")
    for version in ("0.0.43", "0.0.44"):
        deployment_id = svc.store_deployment(
            model_id=model.model_id,
            version=version,
            source=RELEASE_URL.format(v=version),
            sha256=fake_sha256(version),
            package_import_name="my_model",
            image=f"registry.hub.docker.com/jgarrahan/my-model:v{version}",
            is_live=True,
        )
        svc.store_flow(
            deployment_id=deployment_id,
            flow_id=f"demo-flow-{version}",
            flow_name="my-model",
            project_name="test",
        )
    loaded = model.load_deployment()
    print(
        f"Loaded {model!r}\n  live version {loaded.deployment.version} "
        f"(sha256 {loaded.deployment.sha256[:12]}...), flow {loaded.flow.flow_name!r} "
        f"in project {loaded.project.project_name!r}\n"
    )
    for args in (["models", "list"], ["projects", "list"], ["deployments", "list"]):
        print(f"$ lume-services {' '.join(args)}")
        cli.main(args, prog_name="lume-services", standalone_mode=False)
        print()


if __name__ == "__main__":
    main()
