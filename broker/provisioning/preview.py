"""What provisioning would do for a login, changing nothing: the admin trace's and `broker simulate`'s plan.

Against LearnUpon as it is now (GET requests only), or — offline — against an empty portal (no network).
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.clients.learnupon import LearnUponClient
from broker.model import Claims
from broker.provisioning.plan import (
    ApiCall,
    CurrentState,
    DesiredState,
    ProvisioningSettings,
    desired_state,
    plan,
)
from broker.provisioning.sync import dry_run
from broker.store import Store


@dataclass(frozen=True)
class ProvisioningPreview:
    desired: DesiredState
    calls: tuple[ApiCall, ...] | None  # None: no plan (the API could not be read)
    against: str  # what the plan was made against
    problem: str | None = None
    cached: bool = False  # the store says this state was synced already: a login would make no call


def preview_provisioning(
    portal: str,
    claims: Claims,
    settings: ProvisioningSettings,
    client: LearnUponClient | None,
    store: Store | None,
    *,
    offline: bool,
    groups: tuple[str, ...],
) -> ProvisioningPreview:
    """`groups`: the portal's groups for the user (`portal_groups`), the ones the assertion carries."""
    desired = desired_state(claims, settings, groups)
    if offline:
        calls = tuple(plan(desired, CurrentState(user=None)))
        return ProvisioningPreview(desired, calls, "an empty portal (--offline)")
    if client is None:
        problem = "no LearnUpon API client (its credentials are not in the environment)"
        return ProvisioningPreview(desired, None, "", problem)
    try:
        result = dry_run(portal, claims, settings, client, store, groups=groups)
    except Exception as exc:  # a preview must never break the trace or the simulation: show why instead
        return ProvisioningPreview(desired, None, "", str(exc) or type(exc).__name__)
    return ProvisioningPreview(
        desired,
        result.calls,
        f"LearnUpon as it is now ({result.requests} GET requests)",
        cached=result.cached,
    )
