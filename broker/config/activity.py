"""`activity:` in broker.yaml: the admin's log of recent logins and refusals."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ActivitySettings(BaseModel):
    """`activity:` in broker.yaml. The log holds users' e-mail addresses: keep it as short as support needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = True
    max_entries: int = Field(200, ge=10, le=10_000, description="logins and refusals kept (newest)")
    retention_hours: float = Field(72, gt=0, le=24 * 90, description="each entry is deleted after this")

    @property
    def ttl_seconds(self) -> int:
        return max(1, int(self.retention_hours * 3600))
