"""The base of ModelDBService: one transaction per public call, schema check, row locks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lume_services.errors import (
    ConflictError,
    ModelNotFoundError,
)
from lume_services.services.models.db.db import ModelDB
from lume_services.services.models.db.schema import Model

log = logging.getLogger(__name__)
T = TypeVar("T")


class ServiceBase:
    """Holds the ModelDB; runs units of work and translates integrity errors."""

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

    def _write(self, operation: str, work: Callable[[Any], T], *, core: bool = False) -> T:
        """``work`` in one write transaction (on a Core connection with ``core``)."""
        self._ensure_schema()
        try:
            return self._model_db.transact(work, operation=operation, core=core)
        except IntegrityError:
            # A concurrent writer changed what our checks saw; never leak driver text.
            raise ConflictError(
                f"{operation} conflicts with rows written concurrently; nothing was "
                "written. Read the current state and try again."
            ) from None

    def _read(self, operation: str, work: Callable[[Any], T], *, core: bool = False) -> T:
        """``work`` in one read transaction (on a Core connection with ``core``)."""
        self._ensure_schema()
        return self._model_db.transact(work, operation=operation, write=False, core=core)

    def _lock_model(self, session: Session, model_id: int) -> Model:
        row = session.execute(
            select(Model).where(Model.model_id == model_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise ModelNotFoundError({"model_id": model_id})
        return row
