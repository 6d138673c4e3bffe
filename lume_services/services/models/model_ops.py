"""Models: store, get, list (with their live deployment), update, delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from sqlalchemy import Select, and_, delete, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lume_services.errors import (
    ConflictError,
    InUseError,
    ModelNotFoundError,
)
from lume_services.services.models.db.schema import Deployment, Flow, Model
from lume_services.services.models.queries import (
    MODEL_FIELDS,
    all_records,
    first_record,
    flows_used_in_compositions,
    make_page,
)
from lume_services.services.models.records import (
    DeploymentRecord,
    ModelRecord,
    ModelWithLive,
    Page,
)
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import (
    check_filters,
    check_page,
    check_value,
    check_values,
)


class ModelOps(ServiceBase):
    # -- models ---------------------------------------------------------------

    def store_model(
        self, *, author: str, laboratory: str, facility: str, beampath: str, description: str
    ) -> int:
        """Create a model (or return the id of the identical existing one)."""
        values = check_values(
            Model,
            dict(
                author=author,
                laboratory=laboratory,
                facility=facility,
                beampath=beampath,
                description=description,
            ),
        )

        def find(session: Session) -> Optional[int]:
            return session.execute(select(Model.model_id).filter_by(**values)).scalar_one_or_none()

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
        row = self._read(
            "get_model", lambda s: first_record(s, select(Model).filter_by(**query).order_by(Model.model_id))
        )
        if row is None:
            raise ModelNotFoundError(filters)
        return row

    def get_models(self, **filters: Any) -> list[ModelRecord]:
        query = check_filters(Model, filters)
        stmt = select(Model).filter_by(**query).order_by(Model.model_id)
        return self._read("get_models", lambda s: all_records(s, stmt, ModelRecord))

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
        rows = self._read("list_models", lambda s: all_records(s, stmt, ModelRecord))
        return make_page(rows, limit, lambda r: r.model_id)

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
        # "is_live = true", not "IS TRUE": MariaDB matches only "=" against ix_deployment_model_live.
        stmt = (
            select(Model, Deployment)
            .join(models, Model.model_id == models.c.model_id)
            .outerjoin(Deployment, and_(Deployment.model_id == Model.model_id, Deployment.is_live == true()))
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
        return make_page(rows, limit, lambda r: r.model.model_id)

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
                raise InUseError(
                    "model",
                    model_id,
                    f"it has {count} deployment(s)",
                    "delete them first or pass cascade=True",
                )
            used = flows_used_in_compositions(
                session, select(Flow.flow_id).join(Deployment).where(Deployment.model_id == model_id)
            )
            if used:
                raise InUseError(
                    "model",
                    model_id,
                    f"its flows {used} are steps of flows of flows",
                    "delete those compositions first",
                )
            session.execute(delete(Model).where(Model.model_id == model_id))

        self._write("delete_model", work)
