"""Pre-provisioning of LearnUpon users through its REST API (client) and desired-state sync (sync)."""

from broker.provisioning.client import (
    LearnUponAuthError,
    LearnUponClient,
    LearnUponConflict,
    LearnUponError,
    LearnUponNotFound,
    LearnUponUnavailable,
)
from broker.provisioning.sync import (
    ApiCall,
    DesiredState,
    ProvisioningError,
    ProvisioningSettings,
    SyncOutcome,
    SyncPlan,
    build_client,
    desired_state,
    dry_run,
    plan,
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
