"""Microsoft Graph's errors: the message names the call and the reason, never a secret."""

from __future__ import annotations

from broker.errors import BrokerError


class GraphError(BrokerError):
    """Microsoft Graph could not answer; the message names the call and the reason (never a secret)."""

    check = "graph"


class GraphUnavailable(GraphError):
    """Graph or the token endpoint did not answer within the budget: timeouts, throttling, 5xx, network.
    `refused`: not even tried (bulkhead full, circuit open)."""

    check = "graph_unavailable"

    refused = False


class GraphAuthError(GraphError):
    """The app registration was refused: wrong credentials, or a permission / admin consent is missing."""

    check = "graph_auth"
