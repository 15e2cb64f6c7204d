"""Pre-provisioning of LearnUpon users: the REST API client, what to change (plan) and doing it (sync)."""

from broker.clients.learnupon import (
    LearnUponAuthError,
    LearnUponClient,
    LearnUponConflict,
    LearnUponError,
    LearnUponNotFound,
    LearnUponUnavailable,
)
from broker.provisioning.plan import ApiCall, DesiredState, ProvisioningSettings, desired_state, plan
from broker.provisioning.sync import (
    ProvisioningError,
    SyncOutcome,
    SyncPlan,
    build_client,
    dry_run,
    sync_user,
)

__all__ = [
    "ApiCall",
    "DesiredState",
    "LearnUponAuthError",
    "LearnUponClient",
    "LearnUponConflict",
    "LearnUponError",
    "LearnUponNotFound",
    "LearnUponUnavailable",
    "ProvisioningError",
    "ProvisioningSettings",
    "SyncOutcome",
    "SyncPlan",
    "build_client",
    "desired_state",
    "dry_run",
    "plan",
    "sync_user",
]
