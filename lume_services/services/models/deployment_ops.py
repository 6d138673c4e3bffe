"""Deployments: store (with the live flag), get, list, load with flow and project, update, delete."""

from __future__ import annotations

import functools
from typing import Any, Optional

from sqlalchemy import Connection, bindparam, case, delete, false, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lume_services.errors import (
    DeploymentNotFoundError,
    InUseError,
    ModelNotFoundError,
)
from lume_services.services.models.db.schema import Deployment, Flow, Model, Project
from lume_services.services.models.queries import (
    composition_steps,
    deployment_values,
    fetch_all,
    fetch_first,
    filtered,
    flows_used_in_compositions,
    insert_flow,
    insert_unless_exists,
    make_page,
    newest_first,
    require_project,
    upsert_deployment,
)
from lume_services.services.models.records import (
    DeploymentRecord,
    FlowRecord,
    LoadedDeployment,
    Page,
    ProjectRecord,
)
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import (
    check_filters,
    check_page,
    check_value,
    check_values,
)

DEPLOYMENTS = Deployment.__table__
OLDEST_FIRST = ("deploy_date", "deployment_id")
NEWEST_FIRST = ("-deploy_date", "-deployment_id")
_ID = DEPLOYMENTS.c.deployment_id == bindparam("_deployment_id")
BY_ID = select(DEPLOYMENTS).where(_ID)
# One statement makes a deployment its model's only live one (the model is locked).
MAKE_LIVE = (
    update(DEPLOYMENTS)
    .where(
        DEPLOYMENTS.c.model_id == bindparam("_model_id"),
        or_(_ID, DEPLOYMENTS.c.is_live == true()),
    )
    .values(is_live=case((_ID, true()), else_=false()))
)
LOCK_MODEL = select(Model.model_id).where(Model.model_id == bindparam("_model_id")).with_for_update()
# Lock the model that owns a deployment (the subquery's rows are not locked).
LOCK_OWNER = (
    select(Model.model_id)
    .where(Model.model_id == select(DEPLOYMENTS.c.model_id).where(_ID).scalar_subquery())
    .with_for_update()
)


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
    ) -> int:
        """Record a released version of a model and return its deployment_id.

        The same (model, version, sha256) again returns the existing id (and
        makes it live if ``is_live``); the same version with another sha256
        raises :class:`DeploymentConflictError`. Making a deployment live
        demotes the model's previous live deployment in the same transaction.
        """
        values = deployment_values(
            model_id=model_id, version=version, source=source, sha256=sha256, image=image,
            package_import_name=package_import_name, is_live=is_live, asset_dir=asset_dir,
        )  # fmt: skip

        def work(session: Session) -> int:
            self._lock_model(session, model_id)
            return upsert_deployment(session, values, is_live=is_live).deployment_id

        def insert_new(conn: Connection) -> Optional[int]:
            # On SQLite, BEGIN IMMEDIATE is the lock, and the foreign key reports a missing model.
            locking = conn.dialect.name != "sqlite"
            if locking and conn.execute(LOCK_MODEL, {"_model_id": model_id}).scalar_one_or_none() is None:
                raise ModelNotFoundError({"model_id": model_id})
            return insert_unless_exists(conn, DEPLOYMENTS, values)

        if not is_live:
            # A new version that is not live: lock the model and INSERT, on a Core
            # connection. An existing version (None) takes the full path below, which
            # returns it or says how it differs.
            self._ensure_schema()
            try:
                new_id = self._model_db.transact(insert_new, operation="store_deployment", core=True)
            except IntegrityError:
                new_id = None
            if new_id is not None:
                return new_id
        return self._write("store_deployment", work)

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
    ) -> tuple[int, str]:
        """Store a deployment and its registered flow in one transaction.

        Both rows are written or neither is. Returns ``(deployment_id,
        flow_id)``; an identical existing pair is returned as it is.
        """
        values = deployment_values(
            model_id=model_id, version=version, source=source, sha256=sha256, image=image,
            package_import_name=package_import_name, is_live=is_live, asset_dir=asset_dir,
        )  # fmt: skip
        flow = check_values(Flow, dict(flow_id=flow_id, flow_name=flow_name, project_name=project_name))

        def work(session: Session) -> tuple[int, str]:
            require_project(session, project_name)
            self._lock_model(session, model_id)
            deployment = upsert_deployment(session, values, is_live=is_live)
            insert_flow(session, {**flow, "deployment_id": deployment.deployment_id})
            return deployment.deployment_id, flow_id

        return self._write("store_deployment_with_flow", work)

    def get_deployment(self, **filters: Any) -> DeploymentRecord:
        stmt, params = filtered(Deployment, check_filters(Deployment, filters), ["deployment_id"], limit=1)
        row = self._read(
            "get_deployment", lambda s: fetch_first(s, stmt, params, DeploymentRecord), core=True
        )
        if row is None:
            raise DeploymentNotFoundError(filters)
        return row

    def get_deployments(self, **filters: Any) -> list[DeploymentRecord]:
        """All matching deployments, oldest first ([] when none)."""
        stmt, params = filtered(Deployment, check_filters(Deployment, filters), OLDEST_FIRST)
        return self._read(
            "get_deployments", lambda s: fetch_all(s, stmt, params, DeploymentRecord), core=True
        )

    def get_latest_deployment(self, **filters: Any) -> DeploymentRecord:
        """The newest matching deployment by deploy date, then deployment_id."""
        stmt, params = filtered(Deployment, check_filters(Deployment, filters), NEWEST_FIRST, limit=1)
        row = self._read(
            "get_latest_deployment", lambda s: fetch_first(s, stmt, params, DeploymentRecord), core=True
        )
        if row is None:
            raise DeploymentNotFoundError(filters)
        return row

    def get_live_deployment(self, model_id: int) -> DeploymentRecord:
        return self.get_deployment(model_id=model_id, is_live=True)

    def list_deployments(
        self, *, limit: int = 100, after: Optional[int] = None, **filters: Any
    ) -> Page[DeploymentRecord]:
        """One page of deployments in deployment_id order."""
        limit = check_page(limit)
        query = check_filters(Deployment, filters)
        stmt, params = filtered(Deployment, query, ["deployment_id"], limit + 1)
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
        """A deployment of a model with its flow and project, in one statement.

        ``deployment_id=None`` loads the model's latest deployment. A flow
        of flows also gets its steps (one more statement).
        """
        check_value(Model, "model_id", model_id, as_filter=True)
        stmt = (
            select(Deployment, Flow, Project)
            .outerjoin(Flow, Flow.deployment_id == Deployment.deployment_id)
            .outerjoin(Project, Project.project_name == Flow.project_name)
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
            dep, flow, project = row
            steps = composition_steps(session, flow.flow_id) if flow is not None and flow.composite else []
            return LoadedDeployment(
                deployment=DeploymentRecord.model_validate(dep),
                flow=FlowRecord.model_validate(flow) if flow is not None else None,
                project=ProjectRecord.model_validate(project) if project is not None else None,
                flow_of_flows=steps,
            )

        loaded = self._read("load_deployment", work)
        if loaded is None:
            query = {"model_id": model_id}
            if deployment_id is not None:
                query["deployment_id"] = deployment_id
            raise DeploymentNotFoundError(query)
        return loaded

    def update_deployment(
        self,
        deployment_id: int,
        *,
        is_live: Optional[bool] = None,
        image: Optional[str] = None,
    ) -> DeploymentRecord:
        """Set a deployment live (demoting the model's other one) or not, or its image."""
        check_value(Deployment, "deployment_id", deployment_id)
        if is_live is not None:
            check_value(Deployment, "is_live", is_live)
        if image is not None:
            check_value(Deployment, "image", image)

        params = {"_deployment_id": deployment_id}

        def work(conn: Connection) -> DeploymentRecord:
            changes = {k: v for k, v in (("is_live", is_live), ("image", image)) if v is not None}
            model_id = conn.execute(LOCK_OWNER, params).scalar_one_or_none()
            if model_id is None:
                raise DeploymentNotFoundError({"deployment_id": deployment_id})
            if is_live:
                conn.execute(MAKE_LIVE, {**params, "_model_id": model_id})
                changes.pop("is_live")
            if changes:
                conn.execute(_update_one(tuple(changes)), {**params, **changes})
            return DeploymentRecord.model_validate(conn.execute(BY_ID, params).one())

        return self._write("update_deployment", work, core=True)

    def set_live(self, deployment_id: int) -> DeploymentRecord:
        """Make ``deployment_id`` its model's one live deployment."""
        return self.update_deployment(deployment_id, is_live=True)

    def delete_deployment(self, deployment_id: int) -> None:
        """Delete a deployment and its flow (refused while the flow is a composition step)."""
        check_value(Deployment, "deployment_id", deployment_id)

        def work(session: Session) -> None:
            model_id = session.execute(
                select(Deployment.model_id).where(Deployment.deployment_id == deployment_id)
            ).scalar_one_or_none()
            if model_id is None:
                raise DeploymentNotFoundError({"deployment_id": deployment_id})
            self._lock_model(session, model_id)
            used = flows_used_in_compositions(
                session, select(Flow.flow_id).where(Flow.deployment_id == deployment_id)
            )
            if used:
                raise InUseError(
                    "deployment",
                    deployment_id,
                    f"its flow {used} is a step of a flow of flows",
                    "delete that composition first",
                )
            session.execute(delete(Deployment).where(Deployment.deployment_id == deployment_id))

        self._write("delete_deployment", work)
