"""What one login carries through the steps of broker.login: the run, its mode, and the runner's record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Literal, TypeVar

from broker.errors import LoginRefused
from broker.model import Claims, Identity, OutgoingLogin, PendingLogin
from broker.picker import PortalChoice
from broker.provisioning.preview import ProvisioningPreview
from broker.provisioning.sync import SyncOutcome
from broker.rules.routing import RoutingDecision
from broker.runtime import Runtime
from broker.saml.assertion import IssuedResponse
from broker.saml.response import ValidatedResponse

Trace = Callable[[str, str], None]  # (section, detail): what a step checked or decided, for the admin trace
T = TypeVar("T")


class Mode(Enum):
    LIVE = "live"
    TRACE = "trace"
    OFFLINE = "offline"


@dataclass(frozen=True)
class StepDone:
    name: str
    seconds: float
    outcome: Literal["done", "refused"]


def no_trace(section: str, detail: str) -> None:
    return None


@dataclass(frozen=True)
class LoginRun:
    """One login on its way through the steps. The input is a pending login (what was asked for) and either
    the upstream's response (`saml_response`) or, when simulating, an `identity`; the steps fill in the rest."""

    rt: Runtime
    pending: PendingLogin
    mode: Mode = Mode.LIVE
    trace: Trace = no_trace
    saml_response: str = ""
    relay_state: str | None = None
    validated: ValidatedResponse | None = None  # validate
    identity: Identity | None = None  # validate (or given)
    claims: Claims | None = None  # map_claims, then resolve_groups
    decision: RoutingDecision | None = None  # route
    portal: str | None = None  # route: the one portal this login goes to
    choice: PortalChoice | None = None  # route, live: several portals, the login waits for the user's pick
    provisioning: SyncOutcome | None = None  # provision, live
    provisioning_preview: ProvisioningPreview | None = None  # provision, trace and offline
    issued: IssuedResponse | None = None  # issue (signed only in live mode)
    outgoing: OutgoingLogin | None = None  # issue
    done: tuple[StepDone, ...] = ()  # the runner's record
    refused: LoginRefused | None = None  # trace and offline: the refusal that ended the run

    @property
    def upstream(self) -> str:
        return self.pending.upstream


def required(value: T | None, step: str) -> T:
    if value is None:
        raise RuntimeError(f"a login step ran before {step}: check the order of broker.login.STEPS")
    return value
