"""Frozen records returned by the model database service.

Live ORM rows never leave the service; these immutable copies do. Field
names match the spec's column names (``sha256``, ``deployment_id``...).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, ClassVar, Generic, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from lume_services.variables import NO_VARIABLES, Variables

T = TypeVar("T")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "not given", where None is a meaningful value (expected_live=None: nothing live)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    # Fields whose NULL column reads as an empty dict (their validator says so too).
    null_as_empty: ClassVar[tuple[str, ...]] = ()


def _no_tags(value: Any) -> Any:
    """A tags column's NULL reads as no tags."""
    return {} if value is None else value


class ModelRecord(Record):
    model_id: int
    created: datetime
    author: str
    laboratory: str
    facility: str
    beampath: str
    description: str
    require_approval: bool = False
    tags: dict[str, str] = {}

    null_as_empty: ClassVar[tuple[str, ...]] = ("tags",)
    _tags = field_validator("tags", mode="before")(_no_tags)


class DeploymentRecord(Record):
    deployment_id: int
    model_id: int
    version: str
    deploy_date: datetime
    package_import_name: str
    asset_dir: Optional[str]
    source: str
    sha256: str
    image: Optional[str]
    is_live: bool
    tags: dict[str, str] = {}

    null_as_empty: ClassVar[tuple[str, ...]] = ("tags",)
    _tags = field_validator("tags", mode="before")(_no_tags)


class ProjectRecord(Record):
    project_name: str
    description: str


class FlowRecord(Record):
    flow_id: str
    flow_name: str
    project_name: str
    deployment_id: Optional[int]
    composite: bool


class FlowOfFlowsRecord(Record):
    """One step of a composition: the subflow at ``position`` of a parent."""

    id: int
    parent_flow_id: str
    flow_id: str
    position: int
    mapped_parameters: Optional[dict[str, Any]]
    flow: FlowRecord


class LoadedDeployment(Record):
    """A deployment with its flow and project (None until registered) and its variables.

    For a flow of flows (``flow.composite``), ``flow_of_flows`` holds its
    steps in position order; otherwise it is empty. ``variables`` are the
    inputs and outputs its package declares (none declared: empty, with
    ``variables.declared`` false).
    """

    deployment: DeploymentRecord
    flow: Optional[FlowRecord]
    project: Optional[ProjectRecord]
    flow_of_flows: list[FlowOfFlowsRecord] = []
    variables: Variables = NO_VARIABLES


class ModelWithLive(Record):
    """A model and its live deployment (None when none is live)."""

    model: ModelRecord
    live_deployment: Optional[DeploymentRecord]


class AuditEventRecord(Record):
    """One change of the registry (append-only).

    ``entity`` is the kind of row (``model``, ``deployment``, ``project``,
    ``flow``, ``live_request``, ``import``) and ``entity_id`` its key as text;
    ``before`` / ``after`` hold the changed fields (None for a creation /
    deletion).
    """

    event_id: int
    time: datetime
    actor: str
    action: str
    entity: str
    entity_id: str
    model_id: Optional[int]
    before: Optional[dict[str, Any]]
    after: Optional[dict[str, Any]]


class LiveIntervalRecord(Record):
    """A period during which a deployment was its model's live one (half-open).

    ``live_until`` and ``ended_by`` are None while it is still live;
    ``approved_by`` and ``request_id`` are set when an approved request made it
    live. ``change_id`` is the live change that began it.
    """

    change_id: int
    model_id: int
    deployment_id: int
    version: str
    live_from: datetime
    live_until: Optional[datetime]
    set_by: str
    ended_by: Optional[str]
    reason: Optional[str]
    approved_by: Optional[str]
    request_id: Optional[int]


class LiveRequestRecord(Record):
    """A request to make a deployment live on a protected model (``state``: pending, approved, rejected)."""

    request_id: int
    model_id: int
    deployment_id: int
    expected_live: Optional[int]
    requested_by: str
    requested_at: datetime
    reason: str
    state: str
    decided_by: Optional[str]
    decided_at: Optional[datetime]
    decision_reason: Optional[str]


class LiveAt(Record):
    """Which deployment of a model was live at a time, and the interval that says so."""

    model: ModelRecord
    deployment: DeploymentRecord
    interval: LiveIntervalRecord


class BeamlineRecord(Record):
    """A beampath of a facility of a laboratory: how many models it has and how many have a live deployment."""

    laboratory: str
    facility: str
    beampath: str
    models: int
    live: int


_set_fields = BaseModel.__pydantic_fields_set__.__set__  # type: ignore[attr-defined]
_set_extra = BaseModel.__pydantic_extra__.__set__  # type: ignore[attr-defined]
_set_private = BaseModel.__pydantic_private__.__set__  # type: ignore[attr-defined]
_set_dict = object.__setattr__


@functools.lru_cache(maxsize=256)
def records_builder(record: type[Record], keys: tuple[str, ...]) -> Callable[[Iterable[Sequence[Any]]], list[Any]]:
    """A function building ``record``s from database rows whose columns are ``keys``, without validating.

    Rows read back were validated when they were written, and the column
    types already give what the fields hold (aware UTC datetimes, bools,
    decoded JSON), so validating them again only costs time: this builds the
    same frozen records that ``record.model_validate(row)`` gives (equal, same
    field order, same fields set), at a fraction of its cost (one loop, no
    call per row). Columns that are not fields are ignored; a field without a
    column takes its default. Only flat records (no nested record fields) qualify.
    """
    fields = record.model_fields
    for name, info in fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            raise TypeError(f"{record.__name__}.{name} is a nested record: build it with model_validate")
        if name not in keys and info.is_required():
            raise TypeError(f"{record.__name__} needs a column {name!r}; the row has {list(keys)}")
    names = tuple(name for name in fields if name in keys)
    defaults = tuple(name for name in fields if name not in keys)
    empty = tuple(name for name in record.null_as_empty if name in names)
    pick = itemgetter(*(keys.index(name) for name in names))
    if len(names) == 1:
        single = pick
        pick = lambda row: (single(row),)  # noqa: E731
    if names == keys:  # the row's columns are the fields, in order (most listings): no picking
        pick = None
    given = frozenset(names)  # each record gets its own copy: set(frozenset) is the cheapest to make
    new = object.__new__

    def complete(given: dict[str, Any]) -> dict[str, Any]:
        return {n: given[n] if n in given else fields[n].get_default(call_default_factory=True) for n in fields}

    def build(rows: Iterable[Sequence[Any]]) -> list[Any]:
        built = []
        append = built.append
        for row in rows:
            values = dict(zip(names, row if pick is None else pick(row)))
            for name in empty:
                if values[name] is None:
                    values[name] = {}
            if defaults:
                values = complete(values)
            one = new(record)
            _set_dict(one, "__dict__", values)
            _set_fields(one, set(given))
            _set_extra(one, None)
            _set_private(one, None)
            append(one)
        return built

    return build


_WITH_LIVE_FIELDS = frozenset(("model", "live_deployment"))


def with_live(model: ModelRecord, live_deployment: Optional[DeploymentRecord]) -> ModelWithLive:
    """``ModelWithLive(model=model, live_deployment=live_deployment)`` of built records, without validating again."""
    one = object.__new__(ModelWithLive)
    _set_dict(one, "__dict__", {"model": model, "live_deployment": live_deployment})
    _set_fields(one, set(_WITH_LIVE_FIELDS))
    _set_extra(one, None)
    _set_private(one, None)
    return one


class Page(BaseModel, Generic[T]):
    """One page of a listing. Pass ``next_after`` as ``after`` for the next page."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_after: Optional[Any] = None

    def __iter__(self):  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
