"""broker.yaml's `upstreams`: one IdP each, its metadata, claim names, group resolution and trust boundaries."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from broker.config.base import StrictModel
from broker.config.domains import (
    domain_entries,
)
from broker.config.groups import GroupResolution
from broker.config.metadata import MetadataRefreshSettings, tenant_independent_problem
from broker.config.review import DirectorySettings
from broker.config.urls import insecure_url_problem


class ClaimNameOverrides(StrictModel):
    """Attribute names to read for each canonical field, replacing the preset's (Okta, Google and OneLogin
    send whatever names their admin typed). `extra` lists attributes to keep by name for later rules."""

    email: list[str] | None = None
    first_name: list[str] | None = None
    last_name: list[str] | None = None
    display_name: list[str] | None = None
    groups: list[str] | None = None
    object_id: list[str] | None = None
    department: list[str] | None = None
    upn: list[str] | None = None
    extra: list[str] = Field(default_factory=list)


class UpstreamSettings(StrictModel):
    """An upstream IdP (Entra ID, Okta, Google, OneLogin): from a metadata file or URL, or inline fields."""

    preset: Literal["entra", "okta", "google", "onelogin", "adfs", "salesforce", "generic"] = "generic"
    claims: ClaimNameOverrides = ClaimNameOverrides()
    groups: GroupResolution = GroupResolution()
    metadata_file: Path | None = None
    metadata_url: str | None = None
    entity_id: str | None = None
    sso_url: str | None = None
    certificates: list[Path] = Field(default_factory=list, description="PEM files, for inline upstreams")
    sign_authn_requests: bool = False
    allow_sha1: bool = Field(
        False, description="accept RSA-SHA1 signatures from this upstream (off: forgeable)"
    )
    # Metadata is the trust anchor: a listed certificate past its notAfter is accepted (loudly) unless this is on.
    enforce_certificate_expiry: bool = False
    name_id_format: str | None = None
    display_name: str | None = None
    # IdP-initiated logins (a tile in Entra My Apps POSTs an unsolicited response): refused unless allowed.
    allow_unsolicited: bool = False
    metadata_refresh: MetadataRefreshSettings = MetadataRefreshSettings()
    default_portal: str | None = Field(None, description="portal for unsolicited logins with no RelayState")
    # Like Shibboleth's shibmd:Scope: the only e-mail domains this upstream may sign people in with.
    email_domains: list[str] = Field(
        default_factory=list, description="empty: any domain, allowed only on portals it serves alone"
    )

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return domain_entries(value)

    @field_validator("metadata_url")
    @classmethod
    def _metadata_over_https(cls, value: str | None) -> str | None:
        # the metadata is the trust anchor (signing certificates): never over cleartext to another machine
        problem = insecure_url_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    directory: DirectorySettings | None = Field(None, description="where access reviews read its users")

    @model_validator(mode="after")
    def _one_source(self) -> UpstreamSettings:
        sources = [self.metadata_file is not None, self.metadata_url is not None, self.sso_url is not None]
        if sum(sources) != 1:
            raise ValueError("give exactly one of metadata_file, metadata_url, or inline entity_id/sso_url")
        if self.sso_url is not None and (not self.entity_id or not self.certificates):
            raise ValueError("an inline upstream needs entity_id, sso_url and certificates")
        problem = tenant_independent_problem(self.entity_id or "")
        if problem:
            raise ValueError(problem)
        return self
