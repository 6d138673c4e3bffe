"""Settings for fetching, inspecting and installing model packages (LUME_ENVIRONMENT__*)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

MiB = 1024 * 1024


class EnvironmentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_http: bool = Field(
        default=False, description="Accept plain http:// sources (tests and trusted local mirrors only)."
    )
    max_download_bytes: int = Field(
        default=200 * MiB, ge=1, description="Largest artifact accepted from a URL, in bytes."
    )
    download_deadline: float = Field(
        default=300.0, gt=0, description="Seconds a whole download may take, redirects included."
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect to a download host.")
    read_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for the next downloaded bytes."
    )
    max_expanded_bytes: int = Field(
        default=1024 * MiB,
        ge=1,
        description="Largest total uncompressed size read when inspecting an archive.",
    )
    max_members: int = Field(default=20000, ge=1, description="Most members an archive may have.")
    uv_cache_dir: Optional[Path] = Field(
        default=None,
        description="uv's package cache (default: uv's own, e.g. ~/.cache/uv, shared with the registry's "
        "environment so files and compiled bytecode are hard-linked; keep it on the environments' filesystem).",
    )
    install_timeout: float = Field(
        default=900.0, gt=0, description="Seconds an environment build (uv venv + install) may take."
    )
    describe_timeout: float = Field(
        default=180.0, gt=0, description="Seconds loading a flow in its environment may take."
    )
