"""Microsoft Graph client for group names (app-only token): `transport` is the request loop, `client` the
calls, `errors` what can go wrong; this package's names are the ones the rest of the broker uses."""

from broker.clients.graph.client import BATCH_MAX, GET_BY_IDS_MAX, MAX_PAGES, PAGE_SIZE, GraphClient
from broker.clients.graph.errors import GraphAuthError, GraphError, GraphUnavailable
from broker.clients.graph.transport import GRAPH_SCOPE
from broker.config.groups import DEFAULT_GRAPH_BASE, DEFAULT_LOGIN_BASE, GUID_RE, GraphMode

__all__ = [
    "BATCH_MAX",
    "DEFAULT_GRAPH_BASE",
    "DEFAULT_LOGIN_BASE",
    "GET_BY_IDS_MAX",
    "GRAPH_SCOPE",
    "GUID_RE",
    "MAX_PAGES",
    "PAGE_SIZE",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphMode",
    "GraphUnavailable",
]
