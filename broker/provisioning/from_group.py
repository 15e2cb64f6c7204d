"""The members of one Entra group, read from Microsoft Graph, as provisioning rows (`broker provision
--from-group`): the group's name → its object ID → its users, nested groups included. The reads go through
GraphClient's `get_json` and `get_all`, so its token, retry and budget handling apply.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from broker.claims.presets import is_email
from broker.clients.graph import GUID_RE, GraphClient, GraphError
from broker.model import Claims

PAGE_SIZE = 999  # the largest $top Graph allows for member listings
MAX_PAGES = 1000
USER_FIELDS = "id,mail,givenName,surname,userPrincipalName"


@dataclass(frozen=True)
class GroupMembers:
    """The group as LearnUpon will name it, its object ID, its users, and members without a usable email."""

    name: str
    group_id: str
    members: tuple[Claims, ...]
    skipped: tuple[str, ...]  # user IDs (or UPNs) with neither an email nor an email-shaped UPN


def find_group_id(
    client: GraphClient, name: str, static_map: Mapping[str, str], *, budget: float = 30.0
) -> tuple[str, str]:
    """(object ID, LearnUpon name) of the group called `name`: a GUID is taken as is, then the upstream's
    static map (read backwards), then Graph's `$filter=displayName eq '…'`."""
    if GUID_RE.match(name):
        gid = name.lower()
        return gid, static_map.get(gid) or _display_name(client, gid, budget)
    for gid, mapped in static_map.items():
        if mapped.lower() == name.lower():
            return gid.lower(), mapped
    literal = name.replace("'", "''")  # OData string literals double their quotes
    expression = quote(f"displayName eq '{literal}'", safe="")
    url = f"/v1.0/groups?$filter={expression}&$select=id,displayName"
    body = client.get_json(url, what="groups", permission="Group.Read.All", budget=budget)
    found = [g for g in body.get("value", []) if isinstance(g, dict) and isinstance(g.get("id"), str)]
    if not found:
        raise GraphError(f"groups: Graph knows no group named {name!r}")
    if len(found) > 1:
        raise GraphError(
            f"groups: {len(found)} groups are named {name!r}; give the group's object ID instead"
        )
    return found[0]["id"].lower(), str(found[0].get("displayName") or name)


def _display_name(client: GraphClient, gid: str, budget: float) -> str:
    url = f"/v1.0/groups/{gid}?$select=id,displayName"
    body = client.get_json(url, what="group", permission="GroupMember.Read.All", budget=budget)
    name = body.get("displayName")
    if not isinstance(name, str) or not name:
        raise GraphError(f"group: Graph shows no displayName for {gid}")
    return name


def group_members(
    client: GraphClient, name: str, static_map: Mapping[str, str], *, budget: float = 120.0
) -> GroupMembers:
    """Every user in the group, directly or through nested groups, each in that one group; the whole look-up
    within `budget` seconds."""
    started = time.monotonic()
    gid, title = find_group_id(client, name, static_map, budget=budget)
    users = client.get_all(
        f"/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user?$select={USER_FIELDS}&$top={PAGE_SIZE}",
        what="transitiveMembers",
        permission="GroupMember.Read.All and User.Read.All",
        budget=max(0.0, budget - (time.monotonic() - started)),
        max_pages=MAX_PAGES,
    )
    members: dict[str, Claims] = {}
    skipped: list[str] = []
    for user in users:
        email = _email_of(user)
        if email is None:
            skipped.append(str(user.get("userPrincipalName") or user.get("id") or "?"))
            continue
        members.setdefault(
            email.lower(),
            Claims(
                email=email,
                first_name=str(user.get("givenName") or ""),
                last_name=str(user.get("surname") or ""),
                groups=(title,),
                object_id=str(user.get("id") or ""),
            ),
        )
    return GroupMembers(title, gid, tuple(members.values()), tuple(skipped))


def _email_of(user: Mapping[str, object]) -> str | None:
    for key in ("mail", "userPrincipalName"):
        value = user.get(key)
        # guests' UPNs look like name_example.com#EXT#@tenant…: not an address anyone reads mail at
        if isinstance(value, str) and is_email(value) and "#EXT#" not in value.upper():
            return value.strip()
    return None
