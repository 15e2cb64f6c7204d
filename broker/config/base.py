"""The base of every broker.yaml model: unknown keys refused, frozen, values kept out of error messages."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    # Values stay out of error messages (a URL could carry a key); errors name the field and the reason.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
