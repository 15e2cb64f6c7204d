"""Group resolution: upstream group values → LearnUpon group names (static map, store cache, then Graph).

Entra sends group object GUIDs and LearnUpon matches names. Okta, Google and OneLogin already send names,
which pass through unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from broker.clients.graph import GraphClient, GraphError, GraphUnavailable
from broker.clients.guard import ServiceGuard
from broker.config.groups import GUID_RE
from broker.config.groups import GraphSettings as GraphSettings  # re-exported: the settings live in config
from broker.config.groups import GroupResolution as GroupResolution
from broker.errors import LoginRefused
from broker.store import Store, keys

log = logging.getLogger(__name__)

Source = Literal["static", "cache", "graph", "passthrough", "unresolved", "held"]

# Cached "Graph has no such group" marker; Entra display names are never empty.
_NOT_FOUND = b""
# Stale GUIDs (deleted groups) would cost a Graph call on every login; remember them briefly.
NEGATIVE_TTL_SECONDS = 300
# The last complete set of a user's group names (per tenant and user object ID), sent again in full while
# resolution is incomplete (Graph down, throttled, out of time), so LearnUpon's group sync removes nothing.
LAST_COMPLETE_TTL_SECONDS = 90 * 86400


class GroupDirectory(Protocol):
    """What group resolution needs from Graph (GraphClient implements it)."""

    def names_by_ids(self, ids: Iterable[str], *, budget: float | None = None) -> dict[str, str]: ...

    def user_groups(self, object_id: str, *, budget: float | None = None) -> dict[str, str]: ...


class UnreachableDirectory:
    """Stands in for Graph when it must not or cannot be asked (offline runs, a missing secret): every lookup
    fails the way an unreachable Graph does, so resolution follows the upstream's `on_unresolved` policy."""

    def __init__(self, reason: str):
        self.reason = reason

    def names_by_ids(self, ids: Iterable[str], *, budget: float | None = None) -> dict[str, str]:
        raise GraphUnavailable(self.reason)

    def user_groups(self, object_id: str, *, budget: float | None = None) -> dict[str, str]:
        raise GraphUnavailable(self.reason)


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One group value as received, the name it became (None: unresolved), and where the name came from."""

    value: str
    name: str | None
    source: Source


@dataclass(frozen=True)
class GroupResult:
    names: tuple[str, ...]  # LearnUpon group names, in the order received, without duplicates
    records: tuple[GroupRecord, ...]
    unresolved: tuple[str, ...]  # GUIDs without a name (dropped under on_unresolved: drop)
    graph_error: str | None = None  # why Graph could not help, when it could not
    # False when Graph could not answer: `names` is then what is known plus the user's last complete set
    # (`held`), and nothing may be removed because a group is missing from it
    complete: bool = True
    held: tuple[str, ...] = ()


class GroupResolutionFailed(LoginRefused):
    """Group names could not be resolved and the upstream says `on_unresolved: fail`."""

    check = "groups"

    def __init__(self, reason: str, *, unresolved: Iterable[str] = ()):
        super().__init__(reason)
        self.unresolved = tuple(unresolved)


class GroupsUnreachable(GroupResolutionFailed):
    """As `GroupResolutionFailed`, because the directory (Graph) did not answer: it may work in a few minutes."""

    check = "groups"


def graph_client_for(
    settings: GraphSettings,
    *,
    env: Mapping[str, str] = os.environ,
    budget: float = 3.0,
    guard: ServiceGuard | None = None,
) -> GraphClient:
    """A GraphClient for an upstream; build it once at startup (it keeps the token and the connections)."""
    return GraphClient(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        client_secret=settings.client_secret(env),
        mode=settings.mode,
        login_base=settings.login_base,
        graph_base=settings.graph_base,
        default_budget=budget,
        guard=guard,
    )


def resolve_groups(
    values: Iterable[str],
    *,
    object_id: str = "",
    overage_signalled: bool = False,
    settings: GroupResolution,
    store: Store,
    graph_client: GroupDirectory | None = None,
) -> GroupResult:
    """Names for the upstream's group values: static map → cache → one Graph call for the rest.

    Values that are not GUIDs are names already and pass through. With `overage_signalled` (Entra sent
    groups.link, or no groups claim) and `graph.overage` on, the user's groups come from Graph.
    Raises GroupResolutionFailed under `on_unresolved: fail` when a GUID stays unresolved or Graph fails.
    """
    graph = settings.graph
    cache_prefix = keys.group_name_prefix(graph.tenant_id) if graph is not None else None
    records: dict[str, GroupRecord] = {}  # by GUID (lower case) or by name
    missing: list[str] = []  # GUIDs to ask Graph about

    uncached: dict[str, str] = {}  # GUID (lower case) → the value as sent, for GUIDs the static map lacks
    for value in values:
        if not GUID_RE.match(value):
            records.setdefault(value, GroupRecord(value, value, "passthrough"))
            continue
        gid = value.lower()
        if gid in records or gid in uncached:
            continue
        name = settings.static_map.get(gid)
        if name is not None:
            records[gid] = GroupRecord(value, name, "static")
        else:
            uncached[gid] = value
            records[gid] = GroupRecord(value, None, "unresolved")  # keeps the order; filled in below

    # the cache-hit path: one multi-get for every GUID the static map does not name, and the user's last
    # complete set (one Redis round trip)
    last_key = (
        keys.last_complete_groups(graph.tenant_id, object_id) if graph and GUID_RE.match(object_id) else None
    )
    if cache_prefix is not None and (uncached or last_key):
        fetched = store.get_many([cache_prefix + gid for gid in uncached] + ([last_key] if last_key else []))
        cached_names, last_complete = fetched[: len(uncached)], (fetched[-1] if last_key else None)
    else:
        cached_names, last_complete = [None] * len(uncached), None
    for (gid, value), cached in zip(uncached.items(), cached_names, strict=True):
        if cached is None:
            missing.append(gid)
        elif cached != _NOT_FOUND:  # _NOT_FOUND: Graph recently said it has no such group
            records[gid] = GroupRecord(value, cached.decode(), "cache")

    problem: str | None = None
    wants_overage = overage_signalled and graph is not None and graph.overage
    if overage_signalled and not wants_overage:
        log.info("groups: overage signalled but graph.overage is off; using only the groups in the assertion")
    if wants_overage and not GUID_RE.match(object_id):
        problem = "groups overage: the assertion has no objectidentifier claim to look the user up with"
        if settings.on_unresolved == "fail":
            raise GroupResolutionFailed(problem)
        wants_overage = False

    if graph is not None and (missing or wants_overage):
        if graph_client is None:
            raise ValueError("settings.graph is set but resolve_groups got no graph_client")
        found, graph_problem = _ask_graph(
            graph_client, missing, object_id if wants_overage else None, settings
        )
        problem = problem or graph_problem
        _remember(store, cache_prefix, found, missing if graph_problem is None else [], settings)
        for gid in missing:
            if gid in found:
                records[gid] = GroupRecord(records[gid].value, found[gid], "graph")
        for gid, name in found.items():
            records.setdefault(gid, GroupRecord(gid, name, "graph"))  # groups only the overage call knew

    names = tuple(dict.fromkeys(r.name for r in records.values() if r.name is not None))
    held: tuple[str, ...] = ()
    if problem is None:
        if last_key is not None and last_complete != _encode_set(names):
            store.put(last_key, _encode_set(names), LAST_COMPLETE_TTL_SECONDS)
    elif last_complete is not None:
        known = {name.lower() for name in names}
        held = tuple(name for name in json.loads(last_complete) if name.lower() not in known)
        for name in held:
            records[f"held:{name}"] = GroupRecord(name, name, "held")
        names += held
    result = GroupResult(
        names=names,
        records=tuple(records.values()),
        unresolved=tuple(r.value for r in records.values() if r.name is None),
        graph_error=problem,
        complete=problem is None,
        held=held,
    )
    _apply_policy(result, settings)
    return result


def _encode_set(names: Iterable[str]) -> bytes:
    return json.dumps(sorted(set(names)), separators=(",", ":")).encode()


def _ask_graph(
    client: GroupDirectory, missing: list[str], overage_user: str | None, settings: GroupResolution
) -> tuple[dict[str, str], str | None]:
    """One budget for everything Graph is asked during this login; errors come back as text, not raised."""
    found: dict[str, str] = {}
    deadline = time.monotonic() + settings.budget_seconds
    try:
        if overage_user is not None:
            found.update(client.user_groups(overage_user, budget=settings.budget_seconds))
        rest = [gid for gid in missing if gid not in found]
        if rest:
            left = deadline - time.monotonic()
            if left <= 0:
                return found, f"no time left in the {settings.budget_seconds:g} s budget for group names"
            found.update(client.names_by_ids(rest, budget=left))
    except GraphError as exc:
        return found, str(exc)
    return found, None


def _remember(
    store: Store, prefix: str | None, found: dict[str, str], asked: list[str], settings: GroupResolution
) -> None:
    if prefix is None:
        return
    for gid, name in found.items():
        store.put(prefix + gid, name.encode(), settings.cache_ttl_seconds)
    # only when Graph answered fully does "not in the answer" mean "no such group"
    negative_ttl = min(settings.cache_ttl_seconds, NEGATIVE_TTL_SECONDS)
    for gid in asked:
        if gid not in found:
            store.put(prefix + gid, _NOT_FOUND, negative_ttl)


def _apply_policy(result: GroupResult, settings: GroupResolution) -> None:
    if settings.on_unresolved == "fail":
        if result.graph_error is not None:
            raise GroupsUnreachable(f"group names: {result.graph_error}", unresolved=result.unresolved)
        if result.unresolved:
            raise GroupResolutionFailed(
                f"group names: no name for {len(result.unresolved)} group IDs: {', '.join(result.unresolved)}",
                unresolved=result.unresolved,
            )
        return
    if result.graph_error is not None:
        log.warning(
            "groups: Graph lookup failed (%s); continuing with %d names (%d kept from the last complete set), "
            "removing no group; unresolved group IDs: %s",
            result.graph_error,
            len(result.names),
            len(result.held),
            ", ".join(result.unresolved),
        )
    elif result.unresolved:
        log.warning(
            "groups: dropping %d group IDs without a name: %s",
            len(result.unresolved),
            ", ".join(result.unresolved),
        )
