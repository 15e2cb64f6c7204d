"""broker.yaml's settings of the broker itself: its identity and keys, outbound limits, the state store, rate
limits and the admin pages."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from broker.config.base import StrictModel


class KeyFiles(StrictModel):
    key: Path = Field(description="PEM private key (RSA); keep it mode 600")
    cert: Path = Field(description="PEM certificate matching the key")


class OutboundSettings(StrictModel):
    """Limits on calls to outside services (LearnUpon, Microsoft Graph), per broker process."""

    deadline_seconds: float | None = Field(
        None, gt=0, le=120,
        description="all outside calls of one request end this long after it arrived; "
        "default: the largest group-resolution or provisioning budget",
    )  # fmt: skip
    max_concurrent_per_service: int = Field(4, ge=1, le=256, description="bulkhead: calls in flight per "
                                            "LearnUpon portal or Graph tenant; more fail fast")  # fmt: skip
    failures_to_open: int = Field(
        5, ge=1, le=1000, description="failed attempts in a row that open the circuit"
    )
    cooldown_seconds: float = Field(
        30, gt=0, le=3600, description="how long an open circuit skips the service"
    )


class BrokerSettings(StrictModel):
    base_url: str = Field(description="Public URL of the broker, e.g. https://sso.example.com")
    sp_entity_id: str | None = None
    idp_entity_id: str | None = None
    signing: KeyFiles
    next_certificate: Path | None = Field(None, description="published before a key rollover")
    clock_skew_seconds: int = Field(180, ge=0, le=900)
    login_ttl_seconds: int = Field(600, ge=30, le=3600)
    assertion_lifetime_seconds: int = Field(300, ge=30, le=3600)
    max_response_bytes: int = Field(256 * 1024, ge=4096, le=4 * 1024 * 1024)
    secret_key_env: str = "BROKER_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
    outbound: OutboundSettings = OutboundSettings()
    demo: bool = False

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def sp_entity(self) -> str:
        return self.sp_entity_id or f"{self.base_url}/saml/metadata"

    @property
    def idp_entity(self) -> str:
        return self.idp_entity_id or f"{self.base_url}/idp"


class StoreSettings(StrictModel):
    url: str = Field("memory://", description="memory:// or redis://host:port/db; REDIS_URL overrides")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not (
            value.startswith(
                ("memory", "redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
            )
        ):
            raise ValueError(
                "must be memory://, or a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL"
            )
        return value


class RateLimitSettings(StrictModel):
    """Per client IP, shared by all replicas through the store. 0 turns a limit off. A whole office behind one
    NAT address shares its limit: size it for the busiest office's Monday-morning rush, not for one person."""

    login_per_minute: int = Field(600, ge=0)
    acs_per_minute: int = Field(600, ge=0)
    trusted_proxies: int = Field(0, ge=0, le=5, description="proxies in front that set X-Forwarded-For")


class AdminSettings(StrictModel):
    """Who may use /admin: members of these groups (after group resolution) signing in through these
    upstreams, or, for first setup, whoever holds the bootstrap token from the environment."""

    groups: list[str] = Field(
        default_factory=list, description="Entra group object ids, or names/patterns; empty: nobody via IdP"
    )
    upstreams: list[str] = Field(default_factory=list, description="empty: nobody signs in through an IdP")
    bootstrap_token_env: str = "BROKER_ADMIN_TOKEN"  # noqa: S105 (a variable name)
    # bootstrap token attempts per 10 minutes: from one client IP, and from everyone together
    token_attempts_per_client: int = Field(5, ge=1)
    token_attempts_total: int = Field(50, ge=1)
    session_minutes: int = Field(480, ge=5, le=24 * 60)
