"""SCIM configuration (the `scim:` section and `portals.X.scim`): who may push (one bearer token hash per
SCIM client) and what a portal does with leavers.

Tokens are never in the file or in memory as text: the file names an environment variable holding the
SHA-256 hex digest of the token (`broker scim-token` prints a new token and its digest).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ScimClientSettings(_Model):
    """One SCIM client (an Entra enterprise app, an Okta app, a OneLogin connector)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="shown in audit events")
    token_sha256_env: str = Field(description="environment variable holding sha256(token) as 64 hex digits")
    upstream: str | None = Field(
        None, description="the upstream IdP this client speaks for: routing then offers only its portals"
    )


class ScimSettings(_Model):
    """The SCIM endpoint at /scim/v2/ (all portals, by routing rules) and /scim/v2/portals/<portal>/."""

    enabled: bool = False
    clients: list[ScimClientSettings] = Field(default_factory=list)
    requests_per_minute: int = Field(6000, ge=0, description="per SCIM client; 0 turns the limit off")
    max_results: int = Field(200, ge=1, le=1000, description="largest page a list answers")
    lock_seconds: float = Field(30.0, gt=0, le=300, description="longest wait for a user busy elsewhere")
    inline_portals: int = Field(
        1, ge=0, le=100,
        description="with a job queue (Redis): how many of a changed user's portals the SCIM request pushes "
        "itself, in routing order; the others are background jobs",
    )  # fmt: skip
    inline_members: int = Field(
        1, ge=0,
        description="with a job queue: a group change touching at most this many users pushes them like a user "
        "change; one touching more answers once stored, and every member's portals are background jobs",
    )  # fmt: skip

    @field_validator("clients")
    @classmethod
    def _unique_names(cls, value: list[ScimClientSettings]) -> list[ScimClientSettings]:
        names = [c.name for c in value]
        if len(names) != len(set(names)):
            raise ValueError("client names must be unique")
        return value


class PortalScimSettings(_Model):
    """What SCIM does to one portal's LearnUpon users."""

    enabled: bool = Field(True, description="receive SCIM users (needs provisioning credentials)")
    on_deprovision: Literal["disable", "delete"] = Field(
        "disable", description="a user who is deactivated, deleted or no longer routed here"
    )


def valid_token_digest(value: str) -> bool:
    return bool(_HEX64.match(value.strip().lower()))
