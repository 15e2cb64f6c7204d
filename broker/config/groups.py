"""`upstreams.<name>.groups` in broker.yaml: how group values become LearnUpon group names (static map,
cache, Microsoft Graph)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broker.errors import ConfigError

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DEFAULT_LOGIN_BASE = "https://login.microsoftonline.com"
DEFAULT_GRAPH_BASE = "https://graph.microsoft.com"
GraphMode = Literal["getByIds", "batch"]
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class GraphSettings(BaseModel):
    """How to reach Microsoft Graph for one Entra upstream (app registration with client credentials)."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$", description="tenant GUID or domain")
    client_id: str = Field(pattern=GUID_RE.pattern, description="application (client) ID")
    client_secret_env: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="name of the environment variable holding the secret"
    )
    mode: GraphMode = "getByIds"  # batch: GET /groups/{id} in $batch, needs only GroupMember.Read.All
    overage: bool = False  # fetch the user's groups when Entra sends groups.link instead of groups
    login_base: str = DEFAULT_LOGIN_BASE
    graph_base: str = DEFAULT_GRAPH_BASE

    @field_validator("login_base", "graph_base")
    @classmethod
    def _https_unless_loopback(cls, value: str) -> str:
        # the client secret and tokens travel to these URLs: cleartext only to this machine (demo, tests)
        parts = urlsplit(value)
        if parts.query or parts.fragment or not parts.hostname:
            raise ValueError("must be a base URL like https://graph.microsoft.com")
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
            raise ValueError("must use https (plain http only to 127.0.0.1 / localhost)")
        return value.rstrip("/")

    def client_secret(self, env: Mapping[str, str] = os.environ) -> str:
        """The secret from the environment variable named by `client_secret_env`."""
        secret = env.get(self.client_secret_env, "")
        if not secret:
            raise ConfigError(
                f"graph.client_secret_env: environment variable {self.client_secret_env} is not set or empty"
            )
        return secret


class GroupResolution(BaseModel):
    """Per-upstream settings for turning group values into LearnUpon group names."""

    model_config = ConfigDict(extra="forbid")

    static_map: dict[str, str] = {}  # group object GUID → LearnUpon group name; wins over Graph
    graph: GraphSettings | None = None
    cache_ttl_seconds: int = Field(3600, ge=1)
    on_unresolved: Literal["drop", "fail"] = "drop"
    budget_seconds: float = Field(3.0, gt=0, le=30)

    @field_validator("static_map")
    @classmethod
    def _guid_keys(cls, value: dict[str, str]) -> dict[str, str]:
        # only GUIDs are looked up (names pass through), so any other key would silently never match
        for key, name in value.items():
            if not GUID_RE.match(key):
                raise ValueError(f"key {key!r} is not a group object ID (GUID)")
            if not name.strip():
                raise ValueError(f"the name for {key} is empty")
        return {key.lower(): name for key, name in value.items()}
