"""Frozen records returned by the model database service.

Live ORM rows never leave the service; these immutable copies do. Field
names match the spec's column names (``sha256``, ``deployment_id``...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Optional, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class ModelRecord(Record):
    model_id: int
    created: datetime
    author: str
    laboratory: str
    facility: str
    beampath: str
    description: str


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
    """A deployment with its flow and project (None until registered).

    For a flow of flows (``flow.composite``), ``flow_of_flows`` holds its
    steps in position order; otherwise it is empty.
    """

    deployment: DeploymentRecord
    flow: Optional[FlowRecord]
    project: Optional[ProjectRecord]
    flow_of_flows: list[FlowOfFlowsRecord] = []


class ModelWithLive(Record):
    """A model and its live deployment (None when none is live)."""

    model: ModelRecord
    live_deployment: Optional[DeploymentRecord]


class Page(BaseModel, Generic[T]):
    """One page of a listing. Pass ``next_after`` as ``after`` for the next page."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_after: Optional[Any] = None

    def __iter__(self):  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
