"""Settings of event delivery to webhooks (LUME_EVENTS__*)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EventsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow_http: bool = Field(
        default=False, description="Accept plain http:// webhook URLs (tests and trusted networks only)."
    )
    allow_private_targets: str = Field(
        default="",
        description="Comma-separated networks (CIDR, e.g. 127.0.0.0/8,10.1.0.0/16) that webhook targets may "
        "resolve to although they are loopback, link-local, private, multicast or unspecified; empty: none.",
    )
    max_attempts: int = Field(
        default=12, ge=1, le=1000, description="Attempts of one delivery before it is marked dead."
    )
    deadline: float = Field(
        default=24 * 3600.0, gt=0, description="Seconds after its event a delivery is retried at most; then dead."
    )
    backoff_initial: float = Field(
        default=5.0, gt=0, description="Seconds before the first retry; each next retry waits twice as long."
    )
    backoff_max: float = Field(default=3600.0, gt=0, description="Longest wait between two attempts, in seconds.")
    backoff_jitter: float = Field(
        default=0.2, ge=0, le=1, description="Random part of each wait (0.2: up to 20% shorter or longer)."
    )
    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to connect to a webhook target.")
    timeout: float = Field(
        default=10.0, gt=0, description="Seconds a POST to a webhook may wait for each read or write (its answer, mostly)."
    )
    lease: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a delivery process holds a claimed delivery; a crashed one's claims expire after "
        "this (must exceed the timeout).",
    )
    poll_interval: float = Field(
        default=1.0, gt=0, description="Seconds `events deliver` sleeps when nothing is due."
    )
    batch_size: int = Field(
        default=100, ge=1, le=1000, description="Deliveries claimed, and events matched, per round."
    )

    @field_validator("allow_private_targets")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{part.strip()!r} is not a network (write e.g. 127.0.0.0/8)") from None
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_post(self) -> EventsSettings:
        if self.lease <= self.timeout + self.connect_timeout:
            raise ValueError(
                "lease must exceed timeout + connect_timeout, or a slow POST's delivery could be claimed twice"
            )
        return self

    def private_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(p.strip(), strict=False) for p in self.allow_private_targets.split(",")
                if p.strip()]  # fmt: skip
