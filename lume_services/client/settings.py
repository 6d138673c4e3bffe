"""Settings of the remote client (LUME_REGISTRY__*)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class RegistrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Optional[str] = Field(
        default=None,
        description="A registry server (https://registry.example.org): every service call goes to it with "
        "LUME_REGISTRY__TOKEN and no database settings are used; unset: the database directly.",
    )
    token: Optional[SecretStr] = Field(default=None, description="Your API token for LUME_REGISTRY__URL.")
    timeout: float = Field(default=30.0, gt=0, le=3600, description="Seconds each request to the server may take.")
    retries: int = Field(
        default=3, ge=0, le=10,
        description="Retries of a read (never of a change) after a connection failure or a 502/503/504.",
    )  # fmt: skip

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: Optional[str]) -> Optional[str]:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL of a registry server")
        return value
