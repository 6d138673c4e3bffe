"""Prefect settings (LUME_PREFECT__*). Importing this module does not import prefect."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PrefectSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
