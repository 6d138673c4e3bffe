"""Deployments: store (with the live flag), get, list, load with flow and project, update, delete."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from lume_services.errors import (
    DeploymentNotFoundError,
    InUseError,
    ValidationError,
)
from lume_services.services.models.db.schema import Deployment, DeploymentVariables, Flow, Model, Project
from lume_services.services.models.queries import (
    composition_steps,
    deployment_values,
    fetch_all,
    fetch_first,
    filtered,
    flows_used_in_compositions,
    insert_flow,
    insert_unless_exists,
    insert_variables,
    make_page,
    newest_first,
    record_deployment_created,
    require_project,
    upsert_deployment,
    variables_values,
)
from lume_services.services.models.records import (
    DeploymentRecord,
    FlowRecord,
    LoadedDeployment,
    Page,
    ProjectRecord,
)
from lume_services.services.models.tags import DEPLOYMENT_TAGS, tag_filter
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import (
    READ,
    check_filters,
    check_page,
    check_value,
    check_values,
)
from lume_services.services.models.writes import Change, row_values
from lume_services.variables import Variables

DEPLOYMENTS = Deployment.__table__
OLDEST_FIRST = ("deploy_date", "deployment_id")
NEWEST_FIRST = ("-deploy_date", "-deployment_id")
_ID = DEPLOYMENTS.c.deployment_id == bindparam("_deployment_id")


@functools.lru_cache(maxsize=32)
def _one_models_page(stmt: Any) -> Any:
    """A page of one model's deployments read through (model_id, deployment_id).

    When one model holds most rows, MySQL/MariaDB would rather walk the
    primary key in order and skip other models' rows than use the index
    that has exactly the rows wanted, in order.
    """
    hint = "USE INDEX (ix_deployment_model_id)"
    return stmt.with_hint(DEPLOYMENTS, hint, "mysql").with_hint(DEPLOYMENTS, hint, "mariadb")


@functools.lru_cache(maxsize=8)
def _update_one(fields: tuple[str, ...]) -> Any:
    """UPDATE of one deployment's ``fields`` (parameters named like the fields)."""
    return update(DEPLOYMENTS).where(_ID).values({f: bindparam(f) for f in fields})


class DeploymentOps(ServiceBase):
    # -- deployments ----------------------------------------------------------

    def store_deployment(
        self,
        *,
        model_id: int,
        version: str,
        source: str,
        sha256: str,
        package_import_name: str,
        image: Optional[str] = None,
        is_live: bool = False,
        asset_dir: Optional[str] = None,
        variables: Optional[Variables] = None,
    ) -> int:
        """Record a released version of a model and return its deployment_id.

        The same (model, version, sha256) again returns the existing id (and
        makes it live if ``is_live``); the same version with another sha256
        raises :class:`DeploymentConflictError`. Making a deployment live
        demotes the model's previous live deployment in the same transaction;
        on a protected model it raises ApprovalRequiredError (store it with
        ``is_live=False`` and ``request_live`` it). ``variables`` (what its
        package declares, see :mod:`lume_services.variables`) are stored with
        a new deployment.
        """
        values = deployment_values(
            model_id=model_id, version=version, source=source, sha256=sha256, image=image,
            package_import_name=package_import_name, is_live=is_live, asset_dir=asset_dir,
        )  # fmt: skip
        declared = variables_values(variables)

        def work(change: Change) -> int:
            locked = change.lock_model(model_id)
            deployment_id = upsert_deployment(change, values, declared)
            if is_live:
                change.make_live(locked, deployment_id, version)
            return deployment_id

        def insert_new(change: Change) -> Optional[int]:
            # On SQLite, BEGIN IMMEDIATE is the lock, and the foreign key reports a missing model.
            if change.dialect != "sqlite":
                change.lock_model(model_id)
            row = {**values, "deploy_date": change.now}
            new_id = insert_unless_exists(change.unit, DEPLOYMENTS, row)
            if new_id is not None:
                record_deployment_created(change, new_id, row)
                insert_variables(change, new_id, declared)
            return new_id

        if not is_live:
            # A new version that is not live: lock the model and INSERT, on a Core
            # connection. An existing version (None) takes the full path below, which
            # returns it or says how it differs.
            new_id = self._write("store_deployment", insert_new, core=True, on_conflict=lambda: None)
            if new_id is not None:
                return new_id
        return self._write("store_deployment", work, core=True)

    def store_deployment_with_flow(
        self,
        *,
        model_id: int,
        version: str,
        source: str,
        sha256: str,
        package_import_name: str,
        flow_id: str,
        flow_name: str,
        project_name: str,
        image: Optional[str] = None,
        is_live: bool = False,
        asset_dir: Optional[str] = None,
        variables: Optional[Variables] = None,
    ) -> tuple[int, str]:
        """Store a deployment, its variables and its registered flow in one transaction.

        All rows are written or none is. Returns ``(deployment_id,
        flow_id)``; an identical existing pair is returned as it is.
        """
        values = deployment_values(
            model_id=model_id, version=version, source=source, sha256=sha256, image=image,
            package_import_name=package_import_name, is_live=is_live, asset_dir=asset_dir,
        )  # fmt: skip
        declared = variables_values(variables)
        flow = check_values(Flow, dict(flow_id=flow_id, flow_name=flow_name, project_name=project_name))

        def work(change: Change) -> tuple[int, str]:
            require_project(change, project_name)
            locked = change.lock_model(model_id)
            deployment_id = upsert_deployment(change, values, declared)
            insert_flow(change, {**flow, "deployment_id": deployment_id}, model_id=model_id)
            if is_live:
                change.make_live(locked, deployment_id, version)
            return deployment_id, flow_id

        return self._write("store_deployment_with_flow", work, core=True)

    def get_deployment(self, **filters: Any) -> DeploymentRecord:
        tags = tag_filter(filters)
        stmt, params = filtered(Deployment, check_filters(Deployment, filters), ["deployment_id"], limit=1)
        stmt = DEPLOYMENT_TAGS.filter(stmt, tags)
        row = self._read(
            "get_deployment", lambda s: fetch_first(s, stmt, params, DeploymentRecord), core=True
        )
        if row is None:
            raise DeploymentNotFoundError({**filters, **({'tags': tags} if tags else {})})
        return row

    def get_deployments(self, **filters: Any) -> list[DeploymentRecord]:
        """All matching deployments, oldest first ([] when none); ``tags={k: v}`` keeps those carrying them."""
        tags = tag_filter(filters)
        stmt, params = filtered(Deployment, check_filters(Deployment, filters), OLDEST_FIRST)
        stmt = DEPLOYMENT_TAGS.filter(stmt, tags)
        return self._read(
            "get_deployments", lambda s: fetch_all(s, stmt, params, DeploymentRecord), core=True
        )

    def get_latest_deployment(self, **filters: Any) -> DeploymentRecord:
        """The newest matching deployment by deploy date, then deployment_id."""
        tags = tag_filter(filters)
        stmt, params = filtered(Deployment, check_filters(Deployment, filters), NEWEST_FIRST, limit=1)
        stmt = DEPLOYMENT_TAGS.filter(stmt, tags)
        row = self._read(
            "get_latest_deployment", lambda s: fetch_first(s, stmt, params, DeploymentRecord), core=True
        )
        if row is None:
            raise DeploymentNotFoundError({**filters, **({'tags': tags} if tags else {})})
        return row

    def list_deployments(
        self, *, limit: int = 100, after: Optional[int] = None, **filters: Any
    ) -> Page[DeploymentRecord]:
        """One page of deployments in deployment_id order."""
        limit = check_page(limit)
        tags = tag_filter(filters)
        query = check_filters(Deployment, filters)
        stmt, params = filtered(Deployment, query, ["deployment_id"], limit + 1)
        stmt = DEPLOYMENT_TAGS.filter(stmt, tags)
        if query.get("model_id") is not None:
            stmt = _one_models_page(stmt)
        if after is not None:
            check_value(Deployment, "deployment_id", after, as_filter=True)
            stmt = stmt.where(DEPLOYMENTS.c.deployment_id > after)
        rows = self._read(
            "list_deployments", lambda s: fetch_all(s, stmt, params, DeploymentRecord), core=True
        )
        return make_page(rows, limit, lambda r: r.deployment_id)

    def load_deployment(self, *, model_id: int, deployment_id: Optional[int] = None) -> LoadedDeployment:
        """A deployment of a model with its flow, project and variables, in one statement.

        ``deployment_id=None`` loads the model's latest deployment. A flow
        of flows also gets its steps (one more statement).
        """
        check_value(Model, "model_id", model_id, as_filter=True)
        stmt = (
            select(Deployment, Flow, Project, DeploymentVariables)
            .outerjoin(Flow, Flow.deployment_id == Deployment.deployment_id)
            .outerjoin(Project, Project.project_name == Flow.project_name)
            .outerjoin(DeploymentVariables, DeploymentVariables.deployment_id == Deployment.deployment_id)
            .where(Deployment.model_id == model_id)
            .order_by(*newest_first())
            .limit(1)
        )
        if deployment_id is not None:
            check_value(Deployment, "deployment_id", deployment_id, as_filter=True)
            stmt = stmt.where(Deployment.deployment_id == deployment_id)

        def work(session: Session) -> Optional[LoadedDeployment]:
            row = session.execute(stmt).first()
            if row is None:
                return None
            dep, flow, project, variables = row
            steps = composition_steps(session, flow.flow_id) if flow is not None and flow.composite else []
            return LoadedDeployment(
                deployment=DeploymentRecord.model_validate(dep),
                flow=FlowRecord.model_validate(flow) if flow is not None else None,
                project=ProjectRecord.model_validate(project) if project is not None else None,
                flow_of_flows=steps,
                variables=Variables.from_stored(variables),
            )

        loaded = self._read("load_deployment", work)
        if loaded is None:
            query = {"model_id": model_id}
            if deployment_id is not None:
                query["deployment_id"] = deployment_id
            raise DeploymentNotFoundError(query)
        return loaded

    def get_variables(self, deployment_id: int) -> Variables:
        """The inputs and outputs deployment ``deployment_id``'s package declares (one statement)."""
        return self.get_variables_of([deployment_id])[deployment_id]

    def get_variables_of(self, deployment_ids: Iterable[int]) -> dict[int, Variables]:
        """{deployment_id: its variables} for these deployments, in one statement (a missing one raises)."""
        if isinstance(deployment_ids, (str, bytes, Mapping)) or not isinstance(deployment_ids, Iterable):
            raise ValidationError("deployment_ids", deployment_ids, "expected a list of deployment ids", READ)
        wanted = {check_value(Deployment, "deployment_id", d, as_filter=True) for d in deployment_ids}
        stmt = (
            select(
                Deployment.deployment_id, DeploymentVariables.source_file, DeploymentVariables.format,
                DeploymentVariables.inputs, DeploymentVariables.outputs,
            )
            .outerjoin(DeploymentVariables, DeploymentVariables.deployment_id == Deployment.deployment_id)
            .where(Deployment.deployment_id.in_(wanted))
        )

        def work(session: Any) -> dict[int, Variables]:
            rows = session.execute(stmt).mappings()
            return {
                row["deployment_id"]: Variables.from_stored(row if row["source_file"] is not None else None)
                for row in rows
            }

        found = self._read("get_variables", work, core=True) if wanted else {}
        missing = sorted(wanted - set(found))
        if missing:
            raise DeploymentNotFoundError({"deployment_id": missing[0]})
        return found

    def update_deployment(
        self,
        deployment_id: int,
        *,
        is_live: Optional[bool] = None,
        image: Optional[str] = None,
    ) -> DeploymentRecord:
        """Set a deployment live (demoting the model's other one) or not, or its image.

        Changing what is live is refused on a protected model (ApprovalRequiredError).
        """
        check_value(Deployment, "deployment_id", deployment_id)
        if is_live is not None:
            is_live = check_value(Deployment, "is_live", is_live)
        if image is not None:
            check_value(Deployment, "image", image)

        def work(change: Change) -> DeploymentRecord:
            locked = change.lock_owner(deployment_id)
            state = change.deployment_state(deployment_id)
            record = row_values(state)
            if image is not None and image != state.image:
                change.execute(_update_one(("image",)), {"_deployment_id": deployment_id, "image": image})
                change.record("deployment.updated", "deployment", deployment_id, model_id=locked.model_id,
                              before={"image": state.image}, after={"image": image})  # fmt: skip
                record["image"] = image
            if is_live is not None and is_live != (state._live == deployment_id):
                change.move_deployment(locked, state, live=is_live)
                record["is_live"] = is_live
            return DeploymentRecord.model_validate(record)

        return self._write("update_deployment", work, core=True)

    def delete_deployment(self, deployment_id: int) -> None:
        """Delete a deployment and its flow (refused while the flow is a composition step).

        A live deployment's live interval ends (a protected model refuses
        that without approval); its audit events and live history stay.
        """
        check_value(Deployment, "deployment_id", deployment_id)

        def work(change: Change) -> None:
            locked = change.lock_owner(deployment_id)
            state = change.deployment_state(deployment_id)
            used = flows_used_in_compositions(
                change.unit, select(Flow.flow_id).where(Flow.deployment_id == deployment_id)
            )
            if used:
                raise InUseError(
                    "deployment",
                    deployment_id,
                    f"its flow {used} is a step of a flow of flows",
                    "delete that composition first",
                )
            if state._live == deployment_id:
                change.move_deployment(locked, state, live=False)
            change.execute(delete(DEPLOYMENTS).where(_ID), {"_deployment_id": deployment_id})
            change.record("deployment.deleted", "deployment", deployment_id, model_id=locked.model_id,
                          before=row_values(state))  # fmt: skip

        self._write("delete_deployment", work, core=True)
