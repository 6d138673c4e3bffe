"""Settings of the REST server (LUME_API__*)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    anonymous_read: bool = Field(
        default=False, description="Serve reads to requests without a token (writes always need one)."
    )
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=1 << 30,
        description="Largest request body accepted, in bytes; larger ones get 413 before they are read.",
    )  # fmt: skip
    max_upload_bytes: int = Field(
        default=500 * 1024 * 1024, ge=1024, le=1 << 40,
        description="Largest package archive accepted by an upload (POST .../deployments/upload), in bytes.",
    )  # fmt: skip
    job_threads: int = Field(
        default=2, ge=0, le=64,
        description="Jobs (stores submitted over HTTP) each server process runs at once; 0: this process runs none.",
    )  # fmt: skip
    job_lease: float = Field(
        default=120.0, ge=5, le=86400,
        description="Seconds without a heartbeat after which a running job counts as interrupted and is failed.",
    )  # fmt: skip
    session_hours: float = Field(
        default=12.0, ge=0.1, le=720,
        description="Hours a web UI sign-in lasts (never beyond its token's expiry); signing out ends it sooner.",
    )  # fmt: skip
    host: str = Field(default="127.0.0.1", description="Address `lume-services serve` listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `lume-services serve` listens on.")
    workers: int = Field(default=1, ge=1, le=64, description="Server processes `lume-services serve` starts.")
