"""The base of ModelDBService: the acting principal, one transaction per public call, schema check.

Reads run in read transactions (:meth:`ServiceBase._read`); every write runs
through :meth:`ServiceBase._write`, which hands the unit of work a
:class:`~lume_services.services.models.writes.Change` for the service's actor
and writes the change's history rows before committing.
"""

from __future__ import annotations

import copy
import getpass
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Optional, TypeVar

from sqlalchemy.exc import IntegrityError

from lume_services.errors import ConflictError
from lume_services.services.models.db.db import ModelDB
from lume_services.services.models.validation import check_actor
from lume_services.services.models.writes import Change

log = logging.getLogger(__name__)
T = TypeVar("T")


def default_actor() -> str:
    """``<os user>@<hostname>`` (no terminal needed), cut to a valid actor."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name, no passwd entry (containers)
        user = f"uid{os.getuid()}"
    host = socket.gethostname() or "localhost"
    actor = "".join(ch for ch in f"{user}@{host}" if ch.isprintable()).strip()
    return actor[:100] or "unknown"


class ServiceBase:
    """Holds the ModelDB and the actor; runs units of work and translates integrity errors."""

    def __init__(self, model_db: ModelDB, *, actor: Optional[str] = None) -> None:
        self._model_db = model_db
        self._schema_checked = False
        self._actor = default_actor() if actor is None else check_actor(actor)

    def __repr__(self) -> str:
        return f"ModelDBService({self._model_db!r}, actor={self._actor!r})"

    @property
    def model_db(self) -> ModelDB:
        return self._model_db

    @property
    def actor(self) -> str:
        """Who this service's changes are recorded as (audit events, live history, requests)."""
        return self._actor

    def with_actor(self, actor: str) -> Any:
        """The same service (same database and connections) acting as ``actor``."""
        other = copy.copy(self)
        other._actor = check_actor(actor)
        return other

    # -- plumbing -------------------------------------------------------------

    def apply_schema(self) -> None:
        """Bring the database schema to the current revision (idempotent)."""
        self._model_db.upgrade_schema()
        self._schema_checked = True

    def _ensure_schema(self) -> None:
        if not self._schema_checked:
            self._model_db.ensure_schema()
            self._schema_checked = True

    def _write(
        self,
        operation: str,
        work: Callable[[Change], T],
        *,
        core: bool = False,
        on_conflict: Optional[Callable[[], T]] = None,
    ) -> T:
        """``work(change)`` in one write transaction (on a Core connection with ``core``).

        ``on_conflict`` answers instead when a concurrent writer made an
        integrity constraint fail (e.g. a get-or-create race: read the winner).
        """
        self._ensure_schema()

        def unit_of_work(unit: Any) -> T:
            change = Change(unit, self._actor)
            result = work(change)
            change.flush()
            return result

        try:
            return self._model_db.transact(unit_of_work, operation=operation, core=core)
        except IntegrityError:
            if on_conflict is not None:
                return on_conflict()
            # A concurrent writer changed what our checks saw; never leak driver text.
            raise ConflictError(
                f"{operation} conflicts with rows written concurrently; nothing was "
                "written. Read the current state and try again."
            ) from None

    def _read(self, operation: str, work: Callable[[Any], T], *, core: bool = False) -> T:
        """``work`` in one read transaction (on a Core connection with ``core``)."""
        self._ensure_schema()
        return self._model_db.transact(work, operation=operation, write=False, core=core)
