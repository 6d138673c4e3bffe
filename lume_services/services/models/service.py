"""ModelDBService: the model registry's storage API.

Verbs: ``store_x`` creates and returns the spec's id (storing an identical
row again returns the existing id; a contradicting one raises a
:class:`~lume_services.errors.ConflictError` and writes nothing), ``get_x``
returns exactly one record or raises ``XNotFoundError``, ``get_xs`` and
``list_xs`` may return empty results, ``update_x`` and ``delete_x`` change
one row. Every public method is one unit of work (one transaction). Input is
validated against the schema before any SQL runs, so SQLite, MariaDB and
PostgreSQL behave alike. Frozen records, never ORM rows, are returned.

Concurrency: writes that touch a model's deployments first lock the model
row (``SELECT ... FOR UPDATE``; on SQLite every write transaction is
``BEGIN IMMEDIATE``), so "at most one live deployment per model" and "one row
per (model, version)" hold under concurrent writers.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, Union

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from lume_services.errors import (
    ConflictError,
    DeploymentConflictError,
    DeploymentNotFoundError,
    FlowAlreadyExistsError,
    FlowNotFoundError,
    FlowOfFlowsNotFoundError,
    InUseError,
    ModelNotFoundError,
    ProjectAlreadyExistsError,
    ProjectNotFoundError,
    ValidationError,
)
from lume_services.services.models.db.db import ModelDB
from lume_services.services.models.db.schema import Deployment, Flow, FlowOfFlows, Model, Project
from lume_services.services.models.records import (
    DeploymentRecord,
    FlowOfFlowsRecord,
    FlowRecord,
    LoadedDeployment,
    ModelRecord,
    ModelWithLive,
    Page,
    ProjectRecord,
)
from lume_services.services.models.validation import (
    check_filters,
    check_page,
    check_value,
    check_values,
    normalize_sha256,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MODEL_FIELDS = ("author", "laboratory", "facility", "beampath", "description")
SubflowSpec = Union[str, Mapping[str, Any]]


class ModelDBService:
    """Store and query models, deployments, projects, flows and compositions."""

    def __init__(self, model_db: ModelDB) -> None:
        self._model_db = model_db
        self._schema_checked = False

    def __repr__(self) -> str:
        return f"ModelDBService({self._model_db!r})"

    @property
    def model_db(self) -> ModelDB:
        return self._model_db

    # -- plumbing -------------------------------------------------------------

    def apply_schema(self) -> None:
        """Bring the database schema to the current revision (idempotent)."""
        self._model_db.upgrade_schema()
        self._schema_checked = True

    def _ensure_schema(self) -> None:
        if not self._schema_checked:
            self._model_db.ensure_schema()
            self._schema_checked = True

    def _write(self, operation: str, work: Callable[[Session], T]) -> T:
        self._ensure_schema()
        try:
            return self._model_db.transact(work, operation=operation)
        except IntegrityError:
            # A concurrent writer changed what our checks saw; never leak driver text.
            raise ConflictError(
                f"{operation} conflicts with rows written concurrently; nothing was "
                "written. Read the current state and try again."
            ) from None

    def _read(self, operation: str, work: Callable[[Session], T]) -> T:
        self._ensure_schema()
        return self._model_db.transact(work, operation=operation, write=False)

    def _lock_model(self, session: Session, model_id: int) -> Model:
        row = session.execute(
            select(Model).where(Model.model_id == model_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise ModelNotFoundError({"model_id": model_id})
        return row

    # -- models ---------------------------------------------------------------

    def store_model(
        self, *, author: str, laboratory: str, facility: str, beampath: str, description: str
    ) -> int:
        """Create a model (or return the id of the identical existing one)."""
        values = check_values(
            Model,
            dict(author=author, laboratory=laboratory, facility=facility,
                 beampath=beampath, description=description),
        )

        def find(session: Session) -> Optional[int]:
            return session.execute(
                select(Model.model_id).filter_by(**values)
            ).scalar_one_or_none()

        def work(session: Session) -> int:
            existing = find(session)
            if existing is not None:
                return existing
            row = Model(**values)
            session.add(row)
            session.flush()
            return row.model_id

        self._ensure_schema()
        try:
            return self._model_db.transact(work, operation="store_model")
        except IntegrityError:
            # Lost a get-or-create race: the winner's row is committed now.
            found = self._read("store_model", find)
            if found is None:
                raise
            return found

    def get_model(self, **filters: Any) -> ModelRecord:
        """The one model matching ``filters`` (lowest model_id if several)."""
        query = check_filters(Model, filters)
        row = self._read("get_model", lambda s: _first(s, select(Model).filter_by(**query).order_by(Model.model_id)))
        if row is None:
            raise ModelNotFoundError(filters)
        return row

    def get_models(self, **filters: Any) -> list[ModelRecord]:
        query = check_filters(Model, filters)
        stmt = select(Model).filter_by(**query).order_by(Model.model_id)
        return self._read("get_models", lambda s: _all(s, stmt, ModelRecord))

    def list_models(
        self,
        *,
        limit: int = 100,
        after: Optional[int] = None,
        search: Optional[str] = None,
        **filters: Any,
    ) -> Page[ModelRecord]:
        """One page of models in model_id order; ``search`` matches any text field."""
        stmt = self._models_page(limit, after, search, filters)
        rows = self._read("list_models", lambda s: _all(s, stmt, ModelRecord))
        return _page(rows, limit, lambda r: r.model_id)

    def list_models_with_live(
        self,
        *,
        limit: int = 100,
        after: Optional[int] = None,
        search: Optional[str] = None,
        **filters: Any,
    ) -> Page[ModelWithLive]:
        """A page of models, each with its live deployment, in one statement."""
        models = self._models_page(limit, after, search, filters).subquery()
        stmt = (
            select(Model, Deployment)
            .join(models, Model.model_id == models.c.model_id)
            .outerjoin(Deployment, and_(Deployment.model_id == Model.model_id, Deployment.is_live.is_(True)))
            .order_by(Model.model_id)
        )

        def work(session: Session) -> list[ModelWithLive]:
            return [
                ModelWithLive(
                    model=ModelRecord.model_validate(m),
                    live_deployment=DeploymentRecord.model_validate(d) if d is not None else None,
                )
                for m, d in session.execute(stmt).all()
            ]

        rows = self._read("list_models_with_live", work)
        return _page(rows, limit, lambda r: r.model.model_id)

    def _models_page(
        self, limit: int, after: Optional[int], search: Optional[str], filters: Mapping[str, Any]
    ) -> Select[Any]:
        limit = check_page(limit)
        query = check_filters(Model, filters)
        stmt = select(Model).filter_by(**query).order_by(Model.model_id).limit(limit + 1)
        if after is not None:
            check_value(Model, "model_id", after, as_filter=True)
            stmt = stmt.where(Model.model_id > after)
        if search is not None:
            check_value(Model, "description", search, as_filter=True)
            term = search.lower()
            stmt = stmt.where(
                or_(*(func.lower(getattr(Model, f)).contains(term, autoescape=True) for f in MODEL_FIELDS))
            )
        return stmt

    def update_model(self, model_id: int, *, description: str) -> ModelRecord:
        """Change a model's description (it is part of the model's identity)."""
        check_value(Model, "model_id", model_id)
        check_value(Model, "description", description)

        def work(session: Session) -> ModelRecord:
            row = self._lock_model(session, model_id)
            row.description = description
            try:
                session.flush()
            except IntegrityError:
                raise ConflictError(
                    f"Another model with the same author, laboratory, facility and beampath "
                    f"already has description {description!r}; nothing was changed."
                ) from None
            return ModelRecord.model_validate(row)

        return self._write("update_model", work)

    def delete_model(self, model_id: int, *, cascade: bool = False) -> None:
        """Delete a model; with ``cascade`` also its deployments and their flows."""
        check_value(Model, "model_id", model_id)

        def work(session: Session) -> None:
            self._lock_model(session, model_id)
            count = session.execute(
                select(func.count()).select_from(Deployment).where(Deployment.model_id == model_id)
            ).scalar_one()
            if count and not cascade:
                raise InUseError("model", model_id, f"it has {count} deployment(s)",
                                 "delete them first or pass cascade=True")
            used = _flows_used_in_compositions(
                session, select(Flow.flow_id).join(Deployment).where(Deployment.model_id == model_id)
            )
            if used:
                raise InUseError("model", model_id, f"its flows {used} are steps of flows of flows",
                                 "delete those compositions first")
            session.execute(delete(Model).where(Model.model_id == model_id))

        self._write("delete_model", work)

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
        values = check_values(
            Deployment,
            dict(model_id=model_id, version=version, source=source,
                 package_import_name=package_import_name, image=image,
                 is_live=is_live, asset_dir=asset_dir),
        )
        values["sha256"] = normalize_sha256(sha256)

        def work(session: Session) -> int:
            self._lock_model(session, model_id)
            existing = session.execute(
                select(Deployment).where(Deployment.model_id == model_id, Deployment.version == version)
            ).scalar_one_or_none()
            if existing is not None:
                if existing.sha256 != values["sha256"]:
                    raise DeploymentConflictError(model_id, version, existing.sha256, values["sha256"])
                target = existing
            else:
                target = Deployment(**{**values, "is_live": False})
                session.add(target)
                session.flush()
            if is_live and not target.is_live:
                _make_live(session, target)
            return target.deployment_id

        return self._write("store_deployment", work)

    def get_deployment(self, **filters: Any) -> DeploymentRecord:
        query = check_filters(Deployment, filters)
        stmt = select(Deployment).filter_by(**query).order_by(Deployment.deployment_id)
        row = self._read("get_deployment", lambda s: _first(s, stmt))
        if row is None:
            raise DeploymentNotFoundError(filters)
        return row

    def get_deployments(self, **filters: Any) -> list[DeploymentRecord]:
        """All matching deployments, oldest first ([] when none)."""
        query = check_filters(Deployment, filters)
        stmt = select(Deployment).filter_by(**query).order_by(*_oldest_first())
        return self._read("get_deployments", lambda s: _all(s, stmt, DeploymentRecord))

    def get_latest_deployment(self, **filters: Any) -> DeploymentRecord:
        """The newest matching deployment by deploy date, then deployment_id."""
        query = check_filters(Deployment, filters)
        stmt = select(Deployment).filter_by(**query).order_by(*_newest_first())
        row = self._read("get_latest_deployment", lambda s: _first(s, stmt))
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
        stmt = select(Deployment).filter_by(**query).order_by(Deployment.deployment_id).limit(limit + 1)
        if after is not None:
            check_value(Deployment, "deployment_id", after, as_filter=True)
            stmt = stmt.where(Deployment.deployment_id > after)
        rows = self._read("list_deployments", lambda s: _all(s, stmt, DeploymentRecord))
        return _page(rows, limit, lambda r: r.deployment_id)

    def load_deployment(
        self, *, model_id: int, deployment_id: Optional[int] = None
    ) -> LoadedDeployment:
        """A deployment of a model with its flow and project, in one statement.

        ``deployment_id=None`` loads the model's latest deployment.
        """
        check_value(Model, "model_id", model_id, as_filter=True)
        stmt = (
            select(Deployment, Flow, Project)
            .outerjoin(Flow, Flow.deployment_id == Deployment.deployment_id)
            .outerjoin(Project, Project.project_name == Flow.project_name)
            .where(Deployment.model_id == model_id)
            .order_by(*_newest_first())
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
            return LoadedDeployment(
                deployment=DeploymentRecord.model_validate(dep),
                flow=FlowRecord.model_validate(flow) if flow is not None else None,
                project=ProjectRecord.model_validate(project) if project is not None else None,
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

        def work(session: Session) -> DeploymentRecord:
            model_id = session.execute(
                select(Deployment.model_id).where(Deployment.deployment_id == deployment_id)
            ).scalar_one_or_none()
            if model_id is None:
                raise DeploymentNotFoundError({"deployment_id": deployment_id})
            self._lock_model(session, model_id)
            row = session.get(Deployment, deployment_id, populate_existing=True)
            assert row is not None
            if image is not None:
                row.image = image
            if is_live is True and not row.is_live:
                _make_live(session, row)
            elif is_live is False:
                row.is_live = False
            session.flush()
            return DeploymentRecord.model_validate(row)

        return self._write("update_deployment", work)

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
            used = _flows_used_in_compositions(
                session, select(Flow.flow_id).where(Flow.deployment_id == deployment_id)
            )
            if used:
                raise InUseError("deployment", deployment_id, f"its flow {used} is a step of a flow of flows",
                                 "delete that composition first")
            session.execute(delete(Deployment).where(Deployment.deployment_id == deployment_id))

        self._write("delete_deployment", work)

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

        def work(session: Session) -> str:
            found = find(session)
            if found is not None:
                return check(found)
            session.add(Project(**values))
            session.flush()
            return project_name

        self._ensure_schema()
        try:
            return self._model_db.transact(work, operation="store_project")
        except IntegrityError:
            found = self._read("store_project", find)
            if found is None:
                raise
            return check(found)

    def get_project(self, **filters: Any) -> ProjectRecord:
        query = check_filters(Project, filters)
        stmt = select(Project).filter_by(**query).order_by(Project.project_name)
        row = self._read("get_project", lambda s: _first(s, stmt))
        if row is None:
            raise ProjectNotFoundError(filters)
        return row

    def get_projects(self, **filters: Any) -> list[ProjectRecord]:
        query = check_filters(Project, filters)
        stmt = select(Project).filter_by(**query).order_by(Project.project_name)
        return self._read("get_projects", lambda s: _all(s, stmt, ProjectRecord))

    def update_project(self, project_name: str, *, description: str) -> ProjectRecord:
        check_values(Project, dict(project_name=project_name, description=description))

        def work(session: Session) -> ProjectRecord:
            row = session.get(Project, project_name, with_for_update=True)
            if row is None:
                raise ProjectNotFoundError({"project_name": project_name})
            row.description = description
            session.flush()
            return ProjectRecord.model_validate(row)

        return self._write("update_project", work)

    def delete_project(self, project_name: str) -> None:
        """Delete a project that no flow belongs to."""
        check_value(Project, "project_name", project_name)

        def work(session: Session) -> None:
            if session.get(Project, project_name, with_for_update=True) is None:
                raise ProjectNotFoundError({"project_name": project_name})
            count = session.execute(
                select(func.count()).select_from(Flow).where(Flow.project_name == project_name)
            ).scalar_one()
            if count:
                raise InUseError("project", project_name, f"{count} flow(s) belong to it",
                                 "delete their deployments first")
            session.execute(delete(Project).where(Project.project_name == project_name))

        self._write("delete_project", work)

    # -- flows ----------------------------------------------------------------

    def store_flow(
        self, *, deployment_id: int, flow_id: str, flow_name: str, project_name: str
    ) -> str:
        """Record the Prefect flow registered for a deployment; returns flow_id."""
        if deployment_id is None:
            raise ValidationError("deployment_id", None, "a flow belongs to a deployment; "
                                  "store composite flows with store_flow_of_flows(...)")
        values = check_values(
            Flow, dict(deployment_id=deployment_id, flow_id=flow_id,
                       flow_name=flow_name, project_name=project_name),
        )

        def work(session: Session) -> str:
            _require_project(session, project_name)
            model_id = session.execute(
                select(Deployment.model_id).where(Deployment.deployment_id == deployment_id)
            ).scalar_one_or_none()
            if model_id is None:
                raise DeploymentNotFoundError({"deployment_id": deployment_id})
            self._lock_model(session, model_id)
            by_id = session.get(Flow, flow_id)
            if by_id is not None:
                same = (by_id.deployment_id, by_id.flow_name, by_id.project_name) == (
                    deployment_id, flow_name, project_name)
                if same:
                    return flow_id
                raise FlowAlreadyExistsError(
                    flow_id, f"for deployment {by_id.deployment_id!r} as {by_id.flow_name!r} "
                    f"in project {by_id.project_name!r}")
            other = session.execute(
                select(Flow.flow_id).where(Flow.deployment_id == deployment_id)
            ).scalar_one_or_none()
            if other is not None:
                raise FlowAlreadyExistsError(
                    other, f"for deployment {deployment_id!r} (one flow per deployment); "
                    "delete it before registering another")
            session.add(Flow(**values, composite=False))
            session.flush()
            return flow_id

        return self._write("store_flow", work)

    def get_flow(self, **filters: Any) -> FlowRecord:
        query = check_filters(Flow, filters)
        stmt = select(Flow).filter_by(**query).order_by(Flow.flow_id)
        row = self._read("get_flow", lambda s: _first(s, stmt, FlowRecord))
        if row is None:
            raise FlowNotFoundError(filters)
        return row

    def get_flows(self, **filters: Any) -> list[FlowRecord]:
        query = check_filters(Flow, filters)
        stmt = select(Flow).filter_by(**query).order_by(Flow.flow_id)
        return self._read("get_flows", lambda s: _all(s, stmt, FlowRecord))

    def delete_flow(self, flow_id: str) -> None:
        """Delete a flow (and, for a composite, its composition rows)."""
        check_value(Flow, "flow_id", flow_id)

        def work(session: Session) -> None:
            if session.get(Flow, flow_id, with_for_update=True) is None:
                raise FlowNotFoundError({"flow_id": flow_id})
            used = _flows_used_in_compositions(session, select(Flow.flow_id).where(Flow.flow_id == flow_id))
            if used:
                raise InUseError("flow", flow_id, "it is a step of a flow of flows",
                                 "delete that composition first")
            session.execute(delete(Flow).where(Flow.flow_id == flow_id))

        self._write("delete_flow", work)

    # -- flows of flows -------------------------------------------------------

    def store_flow_of_flows(
        self,
        *,
        parent_flow_id: str,
        flow_name: str,
        project_name: str,
        composing_flows: Sequence[SubflowSpec],
    ) -> str:
        """Record a composite flow: its parent flow row and one row per step.

        ``composing_flows`` lists the steps in order (position 1..n), each a
        flow_id or a mapping ``{"flow_id": ..., "mapped_parameters": {...}}``.
        The same subflow may appear more than once. Storing the identical
        composition again returns ``parent_flow_id``.
        """
        check_values(Flow, dict(flow_id=parent_flow_id, flow_name=flow_name, project_name=project_name))
        steps = _normalise_steps(composing_flows)

        def work(session: Session) -> str:
            _require_project(session, project_name)
            wanted = {s["flow_id"] for s in steps}
            found = set(session.execute(select(Flow.flow_id).where(Flow.flow_id.in_(wanted))).scalars())
            if wanted - found:
                raise FlowNotFoundError({"flow_id": sorted(wanted - found)})
            if parent_flow_id in wanted:
                raise ValidationError("composing_flows", parent_flow_id, "a flow of flows cannot contain itself")
            existing = session.get(Flow, parent_flow_id, with_for_update=True)
            if existing is not None:
                return _same_composition(session, existing, flow_name, project_name, steps)
            session.add(Flow(flow_id=parent_flow_id, flow_name=flow_name, project_name=project_name,
                             deployment_id=None, composite=True))
            session.flush()
            session.add_all(FlowOfFlows(parent_flow_id=parent_flow_id, position=i, **step)
                            for i, step in enumerate(steps, start=1))
            session.flush()
            return parent_flow_id

        return self._write("store_flow_of_flows", work)

    def get_flow_of_flows(self, **filters: Any) -> list[FlowOfFlowsRecord]:
        """The steps of a composition (with their flows), in position order."""
        query = check_filters(FlowOfFlows, filters)
        stmt = (
            select(FlowOfFlows)
            .join(FlowOfFlows.flow)
            .options(contains_eager(FlowOfFlows.flow))
            .filter_by(**query)
            .order_by(FlowOfFlows.parent_flow_id, FlowOfFlows.position)
        )
        rows = self._read("get_flow_of_flows", lambda s: _all(s, stmt, FlowOfFlowsRecord))
        if not rows:
            raise FlowOfFlowsNotFoundError(filters)
        return rows


# -- helpers (take a session, never commit) -----------------------------------


def _oldest_first() -> tuple[Any, ...]:
    return (Deployment.deploy_date.asc(), Deployment.deployment_id.asc())


def _newest_first() -> tuple[Any, ...]:
    return (Deployment.deploy_date.desc(), Deployment.deployment_id.desc())


_RECORDS = {Model: ModelRecord, Deployment: DeploymentRecord, Project: ProjectRecord, Flow: FlowRecord}


def _first(session: Session, stmt: Select[Any], record: Any = None) -> Any:
    row = session.execute(stmt.limit(1)).scalars().first()
    if row is None:
        return None
    return (record or _RECORDS[type(row)]).model_validate(row)


def _all(session: Session, stmt: Select[Any], record: Any) -> list[Any]:
    return [record.model_validate(row) for row in session.execute(stmt).scalars().unique()]


def _page(rows: list[T], limit: int, key: Callable[[T], Any]) -> Page[T]:
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(items=rows, next_after=key(rows[-1]))
    return Page(items=rows, next_after=None)


def _make_live(session: Session, target: Deployment) -> None:
    """Demote the model's live deployment(s), then promote ``target``."""
    session.execute(
        update(Deployment)
        .where(Deployment.model_id == target.model_id, Deployment.is_live.is_(True),
               Deployment.deployment_id != target.deployment_id)
        .values(is_live=False)
        .execution_options(synchronize_session=False)
    )
    target.is_live = True
    session.flush()


def _require_project(session: Session, project_name: str) -> None:
    if session.get(Project, project_name) is None:
        raise ProjectNotFoundError({"project_name": project_name})


def _flows_used_in_compositions(session: Session, flow_ids: Select[Any]) -> list[str]:
    """Which of ``flow_ids`` are steps of some flow of flows."""
    stmt = (
        select(FlowOfFlows.flow_id)
        .where(FlowOfFlows.flow_id.in_(flow_ids))
        .distinct()
        .order_by(FlowOfFlows.flow_id)
    )
    return list(session.execute(stmt).scalars())


def _normalise_steps(composing_flows: Sequence[SubflowSpec]) -> list[dict[str, Any]]:
    if isinstance(composing_flows, (str, bytes)) or not isinstance(composing_flows, Sequence):
        raise ValidationError("composing_flows", composing_flows, "expected a list of flow ids or mappings")
    if not composing_flows:
        raise ValidationError("composing_flows", composing_flows, "a flow of flows needs at least one step")
    steps = []
    for item in composing_flows:
        if isinstance(item, str):
            item = {"flow_id": item}
        if not isinstance(item, Mapping) or set(item) - {"flow_id", "mapped_parameters"}:
            raise ValidationError("composing_flows", item,
                                  "each step is a flow id or {'flow_id': ..., 'mapped_parameters': {...}}")
        step = {"flow_id": item.get("flow_id"), "mapped_parameters": item.get("mapped_parameters")}
        check_values(FlowOfFlows, step)
        steps.append(step)
    return steps


def _same_composition(
    session: Session, existing: Flow, flow_name: str, project_name: str, steps: list[dict[str, Any]]
) -> str:
    stored = session.execute(
        select(FlowOfFlows.flow_id, FlowOfFlows.mapped_parameters)
        .where(FlowOfFlows.parent_flow_id == existing.flow_id)
        .order_by(FlowOfFlows.position)
    ).all()
    same = (
        existing.composite
        and (existing.flow_name, existing.project_name) == (flow_name, project_name)
        and [(f, p) for f, p in stored] == [(s["flow_id"], s["mapped_parameters"]) for s in steps]
    )
    if not same:
        raise FlowAlreadyExistsError(existing.flow_id, "with a different definition; compose under a new id")
    return existing.flow_id
