"""The mapping file: which MLflow values feed a model's fields (pydantic; unknown fields refused).

Each model field takes a source or a list of sources, the first one present
wins: ``tag:<key>`` (a registered-model tag), ``mlflow:name``,
``mlflow:description``, ``mlflow:user_id`` (the creating user: the registered
model's, else its first version's), or any other text as a fixed value
(``value:<text>`` to write a fixed value that starts with ``tag:``). The
defaults follow SLAC's conventions (lume-model's ``register_to_mlflow``)::

    author: [tag:email, mlflow:user_id]
    laboratory: [tag:laboratory, slac]
    facility: [tag:facility, unknown]
    beampath: [tag:beam_path, unknown]
    description: [tag:description, mlflow:description, mlflow:name]
    alias: champion
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lume_services.errors import MlflowMappingError

Sources = Union[str, list[str]]
FIELDS = ("author", "laboratory", "facility", "beampath", "description")
MLFLOW_VALUES = ("name", "description", "user_id")


class Mapping(BaseModel):
    """Where each model field comes from, and which alias is the live deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    author: Sources = Field(["tag:email", "mlflow:user_id"], description="the model's author")
    laboratory: Sources = Field(["tag:laboratory", "slac"], description="the laboratory")
    facility: Sources = Field(["tag:facility", "unknown"], description="the facility")
    beampath: Sources = Field(["tag:beam_path", "unknown"], description="the beampath")
    description: Sources = Field(["tag:description", "mlflow:description", "mlflow:name"])
    alias: str = Field("champion", min_length=1, description="the alias that is the live deployment")

    @field_validator(*FIELDS)
    @classmethod
    def _sources(cls, value: Sources) -> list[str]:
        sources = [value] if isinstance(value, str) else list(value)
        if not sources:
            raise ValueError("give at least one source")
        for source in sources:
            if source.startswith("mlflow:") and source[7:] not in MLFLOW_VALUES:
                raise ValueError(f"{source!r} is not one of {', '.join('mlflow:' + v for v in MLFLOW_VALUES)}")
            if source in ("tag:", "value:"):
                raise ValueError(f"{source!r} names nothing")
        return sources

    def resolve(self, field: str, model: dict[str, Any], tags: dict[str, str], user: Optional[str]) -> Optional[tuple[str, str]]:
        """(the value, where it came from) of ``field`` for a registered model; None if no source has one."""
        for source in getattr(self, field):
            value = _value(source, model, tags, user)
            if value:
                return value, source
        return None


def _value(source: str, model: dict[str, Any], tags: dict[str, str], user: Optional[str]) -> Optional[str]:
    if source.startswith("tag:"):
        return tags.get(source[4:])
    if source.startswith("mlflow:"):
        field = source[7:]
        return user if field == "user_id" else model.get(field)
    return source[6:] if source.startswith("value:") else source


def load_mapping(path: Optional[Union[str, Path]]) -> Mapping:
    """The mapping in the YAML file ``path`` (None: the defaults); MlflowMappingError when it is not valid."""
    if path is None:
        return Mapping()
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise MlflowMappingError(str(path), f"it cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise MlflowMappingError(str(path), f"it is not YAML ({type(exc).__name__})") from None
    if document is None:
        return Mapping()
    if not isinstance(document, dict):
        raise MlflowMappingError(str(path), "its top level must be a mapping of field: source")
    try:
        return Mapping.model_validate(document)
    except ValidationError as exc:
        raise MlflowMappingError(str(path), _problems(exc)) from None


def _problems(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join((*FIELDS, "alias"))
            parts.append(f"unknown field {field!r} (allowed: {allowed})")
        else:
            parts.append(f"{field!r}: {error['msg']}")
    return "; ".join(parts)
