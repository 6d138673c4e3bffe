"""Prefect settings (LUME_PREFECT__*). Importing this module does not import prefect."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger(__name__)

PREFECT1_KEYS = ("server", "ui", "agent", "telemetry", "home_dir", "debug", "backend", "image", "isolated")
"""The predecessor's Prefect 1 settings (LUME_PREFECT__SERVER__TAG, ...): accepted and ignored."""


class PrefectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _ignore_prefect1_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        old = sorted(k for k in data if isinstance(k, str) and k.lower() in PREFECT1_KEYS)
        if old:
            names = ", ".join(f"LUME_PREFECT__{k.upper()}" for k in old)
            log.warning("ignoring the predecessor's Prefect 1 settings %s: Prefect 3 uses LUME_PREFECT__API_URL", names)
        return {k: v for k, v in data.items() if k not in old}

    api_url: Optional[str] = Field(
        default=None,
        description="Prefect API URL of a running server (e.g. http://127.0.0.1:4200/api); unset: "
        "PREFECT_API_URL if set, else Prefect's ephemeral mode with its home in $LUME_HOME/prefect.",
    )
    pool_name: str = Field(
        default="lume-services",
        description="Work pool shared by every project; each project is a work queue in it.",
    )

    executor: Literal["auto", "inline", "worker"] = Field(
        default="auto",
        description="Who executes flow runs: inline (a subprocess of the caller, in the deployment's "
        "environment), worker (a `lume-services worker` serving the pool), or auto (inline without "
        "a configured API URL, else worker).",
    )
    results_path: Optional[Path] = Field(
        default=None,
        description="Where flow runs persist results (JSON), readable by the registry "
        "(default $LUME_HOME/results; use a shared filesystem for remote workers).",
    )

    @field_validator("pool_name")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        if not value.strip() or value.lower().startswith("prefect") or any(c in value for c in "/%&><"):
            raise ValueError("must be non-empty, must not start with 'prefect' or contain / % & > <")
        return value
