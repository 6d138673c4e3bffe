"""Projects, flows and flows of flows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lume_services.errors import (
    ConflictError,
    FlowNotFoundError,
    FlowOfFlowsNotFoundError,
    InUseError,
    ProjectAlreadyExistsError,
    ProjectNotFoundError,
    ValidationError,
)
from lume_services.services.models.db.schema import Deployment, Flow, FlowOfFlows, Project
from lume_services.services.models.queries import (
    SubflowSpec,
    all_records,
    deployment_values,
    first_record,
    flows_used_in_compositions,
    insert_flow,
    normalise_steps,
    require_project,
    same_composition,
    steps_query,
    upsert_deployment,
)
from lume_services.services.models.records import (
    FlowOfFlowsRecord,
    FlowRecord,
    ProjectRecord,
)
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import (
    check_filters,
    check_value,
    check_values,
)
from lume_services.services.models.writes import Change, claim_flow, flows_of, row_values

OWNER_REQUIRED = ("model_id", "version", "source", "sha256", "package_import_name")
OWNER_OPTIONAL = ("is_live", "image", "asset_dir")


def _owner_values(deployment: Any) -> Optional[dict[str, Any]]:
    """The validated deployment row a composite is stored as (None: a composite of no model)."""
    if deployment is None:
        return None
    fields = ", ".join(OWNER_REQUIRED) + " and optionally " + ", ".join(OWNER_OPTIONAL)
    if not isinstance(deployment, Mapping):
        raise ValidationError(
            "deployment",
            deployment,
            f"expected None or a mapping of {fields}, got {type(deployment).__name__}",
        )
    unknown = set(deployment) - {*OWNER_REQUIRED, *OWNER_OPTIONAL}
    if unknown:
        raise ValidationError(
            "deployment", sorted(unknown, key=repr), f"unknown fields; a deployment takes {fields}"
        )
    missing = [f for f in OWNER_REQUIRED if f not in deployment]
    if missing:
        raise ValidationError("deployment", missing, f"missing fields; a deployment takes {fields}")
    return deployment_values(**{"image": None, "is_live": False, **deployment})


def _make_live_if(
    change: Change, locked: Any, owner: Optional[Mapping[str, Any]], deployment_id: Any
) -> None:
    if owner is not None and owner["is_live"]:
        change.make_live(locked, deployment_id, owner["version"])


class FlowOps(ServiceBase):
    # -- projects -------------------------------------------------------------

    def store_project(self, *, project_name: str, description: str) -> str:
        """Create a project (or return the name of the identical existing one)."""
        values = check_values(Project, dict(project_name=project_name, description=description))

        def find(session: Session) -> Optional[ProjectRecord]:
            row = session.get(Project, project_name)
            return ProjectRecord.model_validate(row) if row is not None else None

        def check(found: ProjectRecord) -> str:
            if found.description != description:
                raise ProjectAlreadyExistsError(project_name, found.description, description)
            return found.project_name

        def work(change: Change) -> str:
            found = find(change.unit)
            if found is not None:
                return check(found)
            change.unit.add(Project(**values))
            change.unit.flush()
            change.record("project.created", "project", project_name, after=values)
            return project_name

        def lost_race() -> str:
            found = self._read("store_project", find)
            if found is None:
                raise ConflictError("store_project conflicts with a concurrent delete; nothing was written.")
            return check(found)

        return self._write("store_project", work, on_conflict=lost_race)

    def get_project(self, **filters: Any) -> ProjectRecord:
        query = check_filters(Project, filters)
        stmt = select(Project).filter_by(**query).order_by(Project.project_name)
        row = self._read("get_project", lambda s: first_record(s, stmt))
        if row is None:
            raise ProjectNotFoundError(filters)
        return row

    def get_projects(self, **filters: Any) -> list[ProjectRecord]:
        query = check_filters(Project, filters)
        stmt = select(Project).filter_by(**query).order_by(Project.project_name)
        return self._read("get_projects", lambda s: all_records(s, stmt, ProjectRecord))

    def update_project(self, project_name: str, *, description: str) -> ProjectRecord:
        check_values(Project, dict(project_name=project_name, description=description))

        def work(change: Change) -> ProjectRecord:
            row = change.unit.get(Project, project_name, with_for_update=True)
            if row is None:
                raise ProjectNotFoundError({"project_name": project_name})
            if row.description != description:
                change.record("project.updated", "project", project_name,
                              before={"description": row.description}, after={"description": description})  # fmt: skip
                row.description = description
                change.unit.flush()
            return ProjectRecord.model_validate(row)

        return self._write("update_project", work)

    def delete_project(self, project_name: str) -> None:
        """Delete a project that no flow belongs to."""
        check_value(Project, "project_name", project_name)

        def work(change: Change) -> None:
            session = change.unit
            row = session.get(Project, project_name, with_for_update=True)
            if row is None:
                raise ProjectNotFoundError({"project_name": project_name})
            before = row_values(row)
            count = session.execute(
                select(func.count()).select_from(Flow).where(Flow.project_name == project_name)
            ).scalar_one()
            if count:
                raise InUseError(
                    "project", project_name, f"{count} flow(s) belong to it", "delete their deployments first"
                )
            session.execute(delete(Project).where(Project.project_name == project_name))
            change.record("project.deleted", "project", project_name, before=before)

        self._write("delete_project", work)

    # -- flows ----------------------------------------------------------------

    def store_flow(self, *, deployment_id: int, flow_id: str, flow_name: str, project_name: str) -> str:
        """Record the Prefect flow registered for a deployment; returns flow_id."""
        if deployment_id is None:
            raise ValidationError(
                "deployment_id",
                None,
                "a flow belongs to a deployment; store composite flows with store_flow_of_flows(...)",
            )
        values = check_values(
            Flow,
            dict(
                deployment_id=deployment_id, flow_id=flow_id, flow_name=flow_name, project_name=project_name
            ),
        )

        def work(change: Change) -> str:
            require_project(change, project_name)
            locked = change.lock_owner(deployment_id)
            return insert_flow(change, values, model_id=locked.model_id)

        return self._write("store_flow", work, core=True)

    def get_flow(self, **filters: Any) -> FlowRecord:
        query = check_filters(Flow, filters)
        stmt = select(Flow).filter_by(**query).order_by(Flow.flow_id)
        row = self._read("get_flow", lambda s: first_record(s, stmt, FlowRecord))
        if row is None:
            raise FlowNotFoundError(filters)
        return row

    def get_flows(self, **filters: Any) -> list[FlowRecord]:
        query = check_filters(Flow, filters)
        stmt = select(Flow).filter_by(**query).order_by(Flow.flow_id)
        return self._read("get_flows", lambda s: all_records(s, stmt, FlowRecord))

    def delete_flow(self, flow_id: str) -> None:
        """Delete a flow (and, for a composite, its composition rows)."""
        check_value(Flow, "flow_id", flow_id)

        def work(change: Change) -> None:
            session = change.unit
            row = session.get(Flow, flow_id, with_for_update=True)
            if row is None:
                raise FlowNotFoundError({"flow_id": flow_id})
            used = flows_used_in_compositions(session, select(Flow.flow_id).where(Flow.flow_id == flow_id))
            if used:
                raise InUseError(
                    "flow", flow_id, "it is a step of a flow of flows", "delete that composition first"
                )
            model_id = None
            if row.deployment_id is not None:
                model_id = session.execute(
                    select(Deployment.model_id).where(Deployment.deployment_id == row.deployment_id)
                ).scalar_one_or_none()
            before = row_values(row)
            session.execute(delete(Flow).where(Flow.flow_id == flow_id))
            change.record("flow.deleted", "flow", flow_id, model_id=model_id, before=before)

        self._write("delete_flow", work)

    # -- flows of flows -------------------------------------------------------

    def store_flow_of_flows(
        self,
        *,
        parent_flow_id: str,
        flow_name: str,
        project_name: str,
        composing_flows: Sequence[SubflowSpec],
        deployment: Optional[Mapping[str, Any]] = None,
    ) -> str:
        """Record a composite flow: its parent flow row and one row per step.

        ``composing_flows`` lists the steps in order (position 1..n), each a
        flow_id or a mapping ``{"flow_id": ..., "mapped_parameters": {...}}``.
        The same subflow may appear more than once. Storing the identical
        composition again returns ``parent_flow_id``.

        With ``deployment`` (the columns of a deployment row: ``model_id``,
        ``version``, ``source``, ``sha256``, ``package_import_name`` and
        optionally ``is_live``, ``image``, ``asset_dir``) the composite is
        recorded as that version of a model: the deployment row, the parent
        flow (owned by it) and the steps are written in one transaction, so
        ``Model(deployment_id=...)`` loads it. The same version with another
        sha256 raises DeploymentConflictError.
        """
        check_values(Flow, dict(flow_id=parent_flow_id, flow_name=flow_name, project_name=project_name))
        steps = normalise_steps(composing_flows)
        owner = _owner_values(deployment)

        def work(change: Change) -> str:
            session = change.unit
            require_project(session, project_name)
            wanted = {s["flow_id"] for s in steps}
            found = set(session.execute(select(Flow.flow_id).where(Flow.flow_id.in_(wanted))).scalars())
            if wanted - found:
                raise FlowNotFoundError({"flow_id": sorted(wanted - found)})
            if parent_flow_id in wanted:
                raise ValidationError(
                    "composing_flows", parent_flow_id, "a flow of flows cannot contain itself"
                )
            deployment_id = locked = None
            if owner is not None:
                locked = change.lock_model(owner["model_id"])
                deployment_id = upsert_deployment(change, owner)
            existing = session.get(Flow, parent_flow_id, with_for_update=True)
            if existing is not None:
                same_composition(session, existing, flow_name, project_name, steps, deployment_id)
                _make_live_if(change, locked, owner, deployment_id)
                return parent_flow_id
            if deployment_id is not None:
                claim_flow(flows_of(change, [deployment_id]), deployment_id, parent_flow_id)
            session.add(
                Flow(
                    flow_id=parent_flow_id,
                    flow_name=flow_name,
                    project_name=project_name,
                    deployment_id=deployment_id,
                    composite=True,
                )
            )
            session.flush()
            session.add_all(
                FlowOfFlows(parent_flow_id=parent_flow_id, position=i, **step)
                for i, step in enumerate(steps, start=1)
            )
            session.flush()
            change.record(
                "flow_of_flows.created", "flow", parent_flow_id,
                model_id=owner["model_id"] if owner else None,
                after={"flow_name": flow_name, "project_name": project_name, "deployment_id": deployment_id,
                       "steps": [s["flow_id"] for s in steps]},
            )  # fmt: skip
            _make_live_if(change, locked, owner, deployment_id)
            return parent_flow_id

        return self._write("store_flow_of_flows", work)

    def get_flow_of_flows(self, **filters: Any) -> list[FlowOfFlowsRecord]:
        """The steps of a composition (with their flows), in position order."""
        stmt = steps_query(check_filters(FlowOfFlows, filters))
        rows = self._read("get_flow_of_flows", lambda s: all_records(s, stmt, FlowOfFlowsRecord))
        if not rows:
            raise FlowOfFlowsNotFoundError(filters)
        return rows
