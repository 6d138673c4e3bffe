"""Models: store, get, list (with their live deployment), update, delete."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Optional

from sqlalchemy import Connection, Select, and_, bindparam, delete, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError

from lume_services.errors import (
    ConflictError,
    InUseError,
    ModelNotFoundError,
)
from lume_services.services.models.db.schema import DESCRIPTION_LENGTH, Deployment, Flow, Model
from lume_services.services.models.queries import (
    MODEL_FIELDS,
    fetch_all,
    fetch_first,
    filtered,
    flows_used_in_compositions,
    insert_unless_exists,
    make_page,
)
from lume_services.services.models.records import (
    DeploymentRecord,
    ModelRecord,
    ModelWithLive,
    Page,
    records_builder,
    with_live,
)
from lume_services.services.models.tags import MODEL_TAGS, tag_filter
from lume_services.services.models.unit_of_work import ServiceBase
from lume_services.services.models.validation import (
    check_filters,
    check_page,
    check_value,
    check_values,
)
from lume_services.services.models.writes import Change, changed, row_values

MODELS, DEPLOYMENTS = Model.__table__, Deployment.__table__
MODEL_KEYS, DEPLOYMENT_KEYS = tuple(MODELS.c.keys()), tuple(DEPLOYMENTS.c.keys())
# A search term longer than this is longer than any model field, even once lowercased.
MAX_SEARCH = 4 * DESCRIPTION_LENGTH
FIND_MODEL = select(MODELS.c.model_id).where(*(MODELS.c[f] == bindparam(f) for f in MODEL_FIELDS))


def _found(model_id: Optional[int]) -> int:
    if model_id is None:  # it existed a moment ago: deleted concurrently
        raise ConflictError("store_model conflicts with a concurrent delete; nothing was written. Try again.")
    return model_id


def _with_live(models: Select[Any]) -> Select[Any]:
    """The page ``models`` joined with each one's live deployment (NULLs when none is live)."""
    page = models.subquery()
    # "is_live = true", not "IS TRUE": MariaDB matches only "=" against ix_deployment_model_live.
    return (
        select(page, DEPLOYMENTS)
        .select_from(page)
        .outerjoin(DEPLOYMENTS, and_(DEPLOYMENTS.c.model_id == page.c.model_id, DEPLOYMENTS.c.is_live == true()))
        .order_by(page.c.model_id)
    )


@functools.lru_cache(maxsize=64)
def _unfiltered_with_live(limit: int, paged: bool) -> Select[Any]:
    """``_with_live`` of every model, ``limit`` + 1 of them (after the bound ``_after`` when ``paged``)."""
    models = select(MODELS).order_by(MODELS.c.model_id).limit(limit + 1)
    if paged:
        models = models.where(MODELS.c.model_id > bindparam("_after"))
    return _with_live(models)


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

        def find(conn: Connection) -> Optional[int]:
            return conn.execute(FIND_MODEL, values).scalar_one_or_none()

        def work(change: Change) -> int:
            # One statement for a new model; a duplicate is skipped without an error.
            row = {**values, "created": change.now}
            new_id = insert_unless_exists(change.unit, MODELS, row)
            if new_id is None:
                return _found(find(change.unit))
            change.record(
                "model.created", "model", new_id, model_id=new_id, after={**row, "model_id": new_id}
            )
            return new_id

        def lost_race() -> int:
            # Lost a get-or-create race: the winner's row is committed now.
            return _found(self._read("store_model", find, core=True))

        return self._write("store_model", work, core=True, on_conflict=lost_race)

    def get_model(self, **filters: Any) -> ModelRecord:
        """The one model matching ``filters`` (lowest model_id if several; ``tags={k: v}``: carrying them)."""
        tags = tag_filter(filters)
        stmt, params = filtered(Model, check_filters(Model, filters), ["model_id"], limit=1)
        stmt = MODEL_TAGS.filter(stmt, tags)
        row = self._read("get_model", lambda s: fetch_first(s, stmt, params, ModelRecord), core=True)
        if row is None:
            raise ModelNotFoundError({**filters, **({'tags': tags} if tags else {})})
        return row

    def get_models(self, **filters: Any) -> list[ModelRecord]:
        """Every matching model in model_id order; ``tags={k: v, ...}`` keeps those carrying all of them."""
        tags = tag_filter(filters)
        stmt, params = filtered(Model, check_filters(Model, filters), ["model_id"])
        stmt = MODEL_TAGS.filter(stmt, tags)
        return self._read("get_models", lambda s: fetch_all(s, stmt, params, ModelRecord), core=True)

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
        rows = self._read("list_models", lambda s: fetch_all(s, stmt, {}, ModelRecord), core=True)
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
        params: dict[str, Any] = {}
        if search is None and not filters:  # the plain listing: its statement is built once per page size
            stmt = _unfiltered_with_live(check_page(limit), after is not None)
            if after is not None:
                check_value(Model, "model_id", after, as_filter=True)
                params["_after"] = after
        else:
            stmt = _with_live(self._models_page(limit, after, search, filters))
        split = len(MODELS.c)

        def work(conn: Connection) -> list[ModelWithLive]:
            rows = conn.execute(stmt, params).all()  # one fetchall; records built as fetch_all does, unvalidated
            models = records_builder(ModelRecord, MODEL_KEYS)(row[:split] for row in rows)
            lives = iter(records_builder(DeploymentRecord, DEPLOYMENT_KEYS)(
                row[split:] for row in rows if row[split] is not None))  # fmt: skip
            return [
                with_live(model, next(lives) if row[split] is not None else None)
                for model, row in zip(models, rows)
            ]

        rows = self._read("list_models_with_live", work, core=True)
        return make_page(rows, limit, lambda r: r.model.model_id)

    def _models_page(
        self, limit: int, after: Optional[int], search: Optional[str], filters: Mapping[str, Any]
    ) -> Select[Any]:
        limit = check_page(limit)
        filters = dict(filters)
        tags = tag_filter(filters)
        query = check_filters(Model, filters)
        stmt = select(MODELS).filter_by(**query).order_by(MODELS.c.model_id).limit(limit + 1)
        stmt = MODEL_TAGS.filter(stmt, tags)
        if after is not None:
            check_value(Model, "model_id", after, as_filter=True)
            stmt = stmt.where(MODELS.c.model_id > after)
        if search is not None:
            check_value(Model, "description", search, as_filter=True)
            term = search.lower()
            if len(term) > MAX_SEARCH:
                # Longer than any field, so it matches nothing; SQLite would refuse the LIKE pattern.
                return stmt.where(false())
            stmt = stmt.where(
                or_(*(func.lower(MODELS.c[f]).contains(term, autoescape=True) for f in MODEL_FIELDS))
            )
        return stmt

    def update_model(
        self,
        model_id: int,
        *,
        description: Optional[str] = None,
        require_approval: Optional[bool] = None,
    ) -> ModelRecord:
        """Change a model's description (part of its identity) or whether going live needs approval."""
        check_value(Model, "model_id", model_id)
        wanted = {k: v for k, v in (("description", description), ("require_approval", require_approval))
                  if v is not None}  # fmt: skip
        for field, value in wanted.items():
            check_value(Model, field, value)

        def work(change: Change) -> ModelRecord:
            change.lock_model(model_id)
            row = change.unit.get(Model, model_id, populate_existing=True)
            before, after = changed(row_values(row), wanted)
            for field, value in after.items():
                setattr(row, field, value)
            try:
                change.unit.flush()
            except IntegrityError:
                raise ConflictError(
                    f"Another model with the same author, laboratory, facility and beampath "
                    f"already has description {description!r}; nothing was changed."
                ) from None
            if after:
                change.record(
                    "model.updated", "model", model_id, model_id=model_id, before=before, after=after
                )
            return ModelRecord.model_validate(row)

        return self._write("update_model", work)

    def delete_model(self, model_id: int, *, cascade: bool = False) -> None:
        """Delete a model; with ``cascade`` also its deployments and their flows.

        Its audit events stay; its live history and live requests go with it.
        A protected model is not deleted: unprotect it first.
        """
        check_value(Model, "model_id", model_id)

        def work(change: Change) -> None:
            session = change.unit
            locked = change.lock_model(model_id)
            if locked.require_approval:
                raise InUseError(
                    "model", model_id, "it is protected (require_approval)",
                    "unprotect it first with update_model(..., require_approval=False)",
                )  # fmt: skip
            deployments = list(
                session.execute(
                    select(Deployment.deployment_id).where(Deployment.model_id == model_id)
                ).scalars()
            )
            if deployments and not cascade:
                raise InUseError(
                    "model",
                    model_id,
                    f"it has {len(deployments)} deployment(s)",
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
            row = session.get(Model, model_id)
            before = {**row_values(row), "deployments": sorted(deployments)}
            session.execute(delete(Model).where(Model.model_id == model_id))
            change.record("model.deleted", "model", model_id, model_id=model_id, before=before)

        self._write("delete_model", work)
