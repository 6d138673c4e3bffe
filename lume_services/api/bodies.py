"""Request bodies: unknown fields, wrong types and oversized text are refused (422) before any call.

Lengths here only cap what is read; the service checks each value against
its column and answers with the library's message.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=2000)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Key = Annotated[str, StringConstraints(max_length=250)]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ModelCreate(Body):
    author: Text
    laboratory: Text
    facility: Text
    beampath: Text
    description: Text


class ModelUpdate(Body):
    description: Optional[Text] = None
    require_approval: Optional[bool] = None


class TagsSet(Body):
    tags: Annotated[dict[Key, LongText], Field(max_length=1000)]


class TagsRemove(Body):
    keys: Annotated[list[Key], Field(min_length=1, max_length=1000)]


class LiveSet(Body):
    """``expected_live``: the deployment id you saw live (null: none); omitted, no check."""

    deployment_id: Id
    expected_live: Optional[Id] = None
    reason: Optional[Text] = None


class LiveRequestCreate(Body):
    deployment_id: Id
    reason: Text
    expected_live: Optional[Id] = None


class Decision(Body):
    reason: Optional[Text] = None


class ProjectCreate(Body):
    project_name: Text
    description: Text


class TokenCreate(Body):
    name: Annotated[str, StringConstraints(max_length=100)]
    scope: Literal["read", "write", "admin"] = "read"
    project_name: Optional[Text] = None
    expires_in_days: Optional[Annotated[int, Field(ge=1, le=3660)]] = None


class DeploymentCreate(Body):
    """A released package at an https URL (http only with the server's LUME_ENVIRONMENT__ALLOW_HTTP)."""

    source_path: Annotated[str, StringConstraints(max_length=2048)]
    project_name: Text
    is_live: bool = True
    image: Optional[Text] = None
    expected_sha256: Optional[Annotated[str, StringConstraints(max_length=200)]] = None


class RunCreate(Body):
    """A run of a registered flow (``flow_id``: its Prefect deployment id) with its parameters."""

    flow_id: Annotated[str, StringConstraints(max_length=255)]
    parameters: Annotated[dict[str, Any], Field(max_length=1000)] = {}
