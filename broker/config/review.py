"""`portals.<name>.review` and `upstreams.<name>.directory` in broker.yaml: what an access review does with a
portal's accounts, and where it reads each upstream's users from."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ReviewSettings(BaseModel):
    """What a review of one portal does with what it finds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    orphan_action: Literal["disable", "delete"] = "disable"
    inactive_after_days: int = Field(90, ge=1, description="no LearnUpon sign-in for this long: inactive")
    new_account_grace_days: int = Field(
        14, ge=0, description="accounts younger than this are not reported as never signed in"
    )
    reclaim_after_days: int | None = Field(
        None,
        ge=1,
        description="--apply also disables inactive / never-signed-in accounts this old; unset: never",
    )
    max_changes_percent: float = Field(5.0, gt=0, le=100, description="default --max-changes, % of users")


def _base_url(value: str) -> str:
    # credentials travel to these URLs: cleartext only to this machine (demo, tests)
    parts = urlsplit(value)
    if parts.query or parts.fragment or not parts.hostname or parts.username:
        raise ValueError("must be a base URL like https://example.okta.com")
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        raise ValueError("must use https (plain http only to 127.0.0.1 / localhost)")
    return value.rstrip("/")


class EntraDirectorySettings(BaseModel):
    """Read the upstream's users from Microsoft Graph with the app registration in `groups.graph`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["entra"]
    sign_in_activity: bool = Field(True, description="read signInActivity (AuditLog.Read.All, Entra ID P1)")


class OktaDirectorySettings(BaseModel):
    """Read the upstream's users from the Okta Users API with an API token (read-only admin is enough)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["okta"]
    org_url: str = Field(description="https://YOUR-ORG.okta.com")
    token_env: str = Field(pattern=_ENV_NAME, description="environment variable holding the SSWS API token")

    _url = field_validator("org_url")(classmethod(lambda cls, v: _base_url(v)))


class GoogleDirectorySettings(BaseModel):
    """Read the upstream's users from the Admin SDK Directory API with a service account allowed by
    domain-wide delegation to act as `admin_email` (scopes admin.directory.user.readonly and
    admin.directory.group.readonly)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["google"]
    customer: str = Field("my_customer", description="customer ID, or my_customer")
    admin_email: str = Field(description="the admin the service account acts as")
    service_account_file_env: str = Field(
        pattern=_ENV_NAME, description="environment variable holding the path of the service account JSON key"
    )
    api_base: str = "https://admin.googleapis.com"

    _url = field_validator("api_base")(classmethod(lambda cls, v: _base_url(v)))

    @field_validator("admin_email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
            raise ValueError("must be an email address")
        return value


DirectorySettings = Annotated[
    EntraDirectorySettings | OktaDirectorySettings | GoogleDirectorySettings, Field(discriminator="kind")
]
