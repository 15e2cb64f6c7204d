"""`upstreams.<name>.metadata_refresh` in broker.yaml: how often and how carefully metadata URLs are read."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

MIN_REFRESH_SECONDS = 60


class MetadataRefreshSettings(BaseModel):
    """`upstreams.<name>.metadata_refresh` in the YAML; used only with `metadata_url`."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    interval_seconds: int = Field(3600, ge=MIN_REFRESH_SECONDS, description="refresh at least this often")
    honour_cache_duration: bool = Field(
        True, description="refresh sooner when the metadata's cacheDuration or validUntil asks for it"
    )
    retry_seconds: int = Field(
        300, ge=10, description="after a failed refresh, retry this soon (doubling, up to interval_seconds)"
    )
    timeout_seconds: float = Field(10, gt=0, le=120)
    signing_certificate: Path | None = Field(
        None, description="PEM file (one or more certificates): the metadata must carry a valid signature"
    )
    max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)


# Entra's tenant-independent ("common") metadata names this placeholder as its entityID: responses come from
# https://sts.windows.net/<tenant-id>/, so an upstream built from it can never accept a login.
ENTRA_TENANT_PLACEHOLDER = "{tenantid}"


def tenant_independent_problem(entity_id: str) -> str | None:
    """Why an upstream with this entityID cannot work (Entra's common metadata), or None."""
    if ENTRA_TENANT_PLACEHOLDER in entity_id.lower() or "%7btenantid%7d" in entity_id.lower():
        return (
            f"entityID {entity_id} is Entra's tenant-independent metadata, which no response is ever issued "
            "for; use the tenant's App Federation Metadata URL from the enterprise application's Single "
            "sign-on page (https://login.microsoftonline.com/<tenant-id>/federationmetadata/2007-06/"
            "federationmetadata.xml?appid=<app-id>)"
        )
    return None
