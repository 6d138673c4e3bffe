"""Registering a released package as a deployment: the store_deployment pipeline.

source -> fetch (content-addressed) -> inspect (no code runs) -> isolated
environment (uv, one per sha256) -> load the flow in that environment's
subprocess -> register with Prefect -> one transaction writing the deployment
and flow rows. Rows are written last, so a failure at any step leaves no
deployment or flow row; the error names the step. Re-running after fixing
the cause succeeds, and storing the same artifact again returns the
existing deployment without reinstalling anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any, Optional

from lume_services.environment.inspect import inspect_archive, valid_image
from lume_services.environment.runner import describe_flow
from lume_services.environment.sources import parse_source, without_credentials
from lume_services.errors import (
    ApprovalRequiredError,
    DeploymentConflictError,
    LUMEServicesError,
    StorageError,
    UnexpectedError,
    ValidationError,
)
from lume_services.services.models.db.adopt import unverified_checksum
from lume_services.services.models.records import DeploymentRecord
from lume_services.services.scheduling.service import FlowRegistration

log = logging.getLogger(__name__)
Progress = Callable[[str, Optional[int], Optional[int]], None]


@dataclass
class Services:
    """What the pipeline composes; built from the configured context by default."""

    model_db: Any
    store: Any
    envs: Any
    scheduling: Any

    @classmethod
    def from_context(cls) -> Services:
        from lume_services import config

        return cls.of(config.get_context())

    @classmethod
    def of(cls, ctx: Any) -> Services:
        return cls(
            ctx.model_db_service(), ctx.artifact_store(), ctx.environment_manager(), ctx.scheduling_service()
        )


class LocalRegistrar:
    """Stores deployments with this machine's artifact store, environments and Prefect (the pipeline below).

    ``Model.store_deployment`` calls a registrar; with LUME_REGISTRY__URL it
    is :class:`lume_services.client.jobs.RemoteRegistrar` (a server job)
    instead, with the same arguments and answers.
    """

    def __init__(self, services: Services) -> None:
        self.services = services

    def store_deployment(self, model_db_service: Any, **arguments: Any) -> DeploymentRecord:
        services = Services(model_db_service, self.services.store, self.services.envs, self.services.scheduling)
        return store_deployment(services, **arguments)


@contextmanager
def step(name: str, progress: Optional[Progress]) -> Iterator[None]:
    """Name the pipeline step in any error raised inside it."""
    if progress is not None:
        progress(name, None, None)
    try:
        try:
            yield
        except LUMEServicesError:
            raise
        except OSError as exc:
            raise StorageError(f"store_deployment's step {name!r}", exc.filename, exc) from exc
        except Exception as exc:
            raise UnexpectedError(f"store_deployment's step {name!r}", exc) from exc
    except LUMEServicesError as exc:
        exc.step = name  # type: ignore[attr-defined]
        exc.add_note(f"store_deployment stopped at step {name!r}; no deployment or flow was recorded.")
        raise


def store_deployment(
    services: Services,
    *,
    model_id: int,
    source_path: Any,
    project_name: str,
    is_live: bool = True,
    image: Optional[str] = None,
    expected_sha256: Optional[str] = None,
    progress: Optional[Progress] = None,
    recorded_source: Optional[str] = None,
) -> DeploymentRecord:
    """The pipeline; ``recorded_source`` is what the deployment records as its source (default: the source)."""
    svc, settings = services.model_db, services.store.settings
    with step("check project", progress):
        project = svc.get_project(project_name=project_name)
        protected = svc.get_model(model_id=model_id).require_approval
        if image is not None and not (isinstance(image, str) and valid_image(image)):
            raise ValidationError(
                "image", image, "expected a container image reference like registry/name:tag"
            )
    with step("fetch", progress):
        source = parse_source(source_path, allow_http=settings.allow_http)
        download = (lambda done, total: progress("fetch", done, total)) if progress else None
        artifact = services.store.put(source, expected_sha256=expected_sha256, progress=download)
    with step("inspect", progress):
        info = inspect_archive(artifact.path, settings)
        info.check_python(services.envs.python_version)
    stored = same_version(svc, model_id, info.version, artifact.sha256)
    existing = _existing(svc, services.envs, stored, is_live)
    if existing is not None:
        return existing
    with step("check approval", progress):
        refuse_unapproved_live(model_id, protected, is_live, stored)
    with step("install", progress):
        env = services.envs.ensure(artifact, environment_requirements())
    with step("load flow", progress):
        described = describe_flow(
            env.python, info.import_name, home=services.envs.home, timeout=settings.describe_timeout,
            package=f"{info.name} {info.version}", environment=env.path,
        )  # fmt: skip
    registration = FlowRegistration(
        model_id=model_id, version=info.version, project_name=project_name,
        flow_name=described["flow_name"], entrypoint=described["entrypoint"], environment=env.path,
        parameter_schema=described["parameters"], image=image or info.image,
        description=f"{info.name} {info.version} (sha256 {artifact.sha256})",
    )  # fmt: skip
    with step("register", progress):
        # The registry's project table is the source of truth; its queue follows it.
        services.scheduling.create_project(project_name, description=project.description)
        flow_id = services.scheduling.register_flow(registration)
    with step("record", progress):
        deployment_id = _record(services, registration, info, artifact, source, flow_id, is_live, recorded_source)
    return svc.get_deployment(deployment_id=deployment_id)


def environment_requirements() -> list[str]:
    """What every deployment environment gets besides its package: this registry's Prefect."""
    return [f"prefect=={installed_version('prefect')}"]


def _existing(
    svc: Any, envs: Any, deployment: Optional[DeploymentRecord], is_live: bool
) -> Optional[DeploymentRecord]:
    """The stored deployment of this exact artifact (``same_version``'s answer), if complete."""
    if deployment is None:
        return None
    loaded = svc.load_deployment(model_id=deployment.model_id, deployment_id=deployment.deployment_id)
    if loaded.flow is None or envs.get(deployment.sha256) is None:
        return None  # incomplete (e.g. environment removed): finish the registration
    if is_live and not deployment.is_live:
        return svc.set_live(deployment.deployment_id)
    return deployment


def refuse_unapproved_live(
    model_id: int, protected: bool, is_live: bool, stored: Optional[DeploymentRecord]
) -> None:
    """A new live version of a protected model needs approval: refuse before installing or registering."""
    if protected and is_live and not (stored is not None and stored.is_live):
        raise ApprovalRequiredError(model_id, None if stored is None else stored.deployment_id)


def same_version(svc: Any, model_id: int, version: str, sha256: str) -> Optional[DeploymentRecord]:
    """The model's deployment of ``version`` (None if there is none); another sha256 raises DeploymentConflictError."""
    found = svc.get_deployments(model_id=model_id, version=version)
    if found and found[0].sha256 != sha256 and not unverified_checksum(found[0].sha256):  # adopted: replaced
        raise DeploymentConflictError(model_id, version, found[0].sha256, sha256)
    return found[0] if found else None


@contextmanager
def undo_unrecorded(svc: Any, scheduling: Any, flow_id: str) -> Iterator[None]:
    """Remove the Prefect deployment ``flow_id`` if recording it fails and no row has it."""
    try:
        yield
    except Exception:
        if not svc.get_flows(flow_id=flow_id):  # ours and unrecorded
            scheduling.delete_flow(flow_id)
        raise


def _record(
    services: Services,
    reg: FlowRegistration,
    info: Any,
    artifact: Any,
    source: Any,
    flow_id: str,
    is_live: bool,
    recorded_source: Optional[str] = None,
) -> int:
    svc = services.model_db
    if recorded_source is None:
        recorded_source = without_credentials(source.original) if source.kind == "url" else Path(source.path).as_uri()
    with undo_unrecorded(svc, services.scheduling, flow_id):
        deployment_id, _ = svc.store_deployment_with_flow(
            model_id=reg.model_id, version=info.version, source=recorded_source, sha256=artifact.sha256,
            package_import_name=info.import_name, image=reg.image, is_live=is_live,
            flow_id=flow_id, flow_name=reg.flow_name, project_name=reg.project_name, variables=info.variables,
        )  # fmt: skip
    return deployment_id
