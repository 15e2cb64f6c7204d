"""HTTP client of the LearnUpon REST API v1: pooled, retrying, rate-limit aware, bounded by a time budget.

`transport` is the request loop, `client` the calls, `errors` what can go wrong; this package's names are the
ones the rest of the broker uses.
"""

from broker.clients.learnupon.client import LearnUponClient, generate_password
from broker.clients.learnupon.errors import (
    LearnUponAuthError,
    LearnUponConflict,
    LearnUponError,
    LearnUponMaybeDone,
    LearnUponNotFound,
    LearnUponRejected,
    LearnUponUnavailable,
)
from broker.clients.learnupon.transport import CallScope

__all__ = [
    "CallScope",
    "LearnUponAuthError",
    "LearnUponClient",
    "LearnUponConflict",
    "LearnUponError",
    "LearnUponMaybeDone",
    "LearnUponNotFound",
    "LearnUponRejected",
    "LearnUponUnavailable",
    "generate_password",
]
