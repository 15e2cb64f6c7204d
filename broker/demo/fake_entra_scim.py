"""What the demo's fake Entra sends to the broker's SCIM endpoint when an admin clicks "Disable user".

Real Entra provisions assigned users and their groups in its cycles, then sends `active` false (as the string
"False", a documented Entra habit) when a user is disabled or unassigned. The fake does the same in one go:
it makes sure the user and their groups exist (query by userName / displayName, create if missing, add the
member), then sends the disabling PATCH. Shapes follow Microsoft's SCIM tutorial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from broker.demo.idp_response import DemoUser

USER_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]  # fmt: skip
GROUP_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:Group",
                 "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]  # fmt: skip
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class ScimPushFailed(Exception):
    pass


@dataclass
class EntraScimPush:
    base_url: str  # http://…/scim/v2
    token: str
    group_names: Callable[[DemoUser], list[str]]

    def _call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        response = requests.request(
            method, self.base_url + path, json=body, params=params or None, timeout=15,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json"},
        )  # fmt: skip
        if response.status_code >= 400:
            raise ScimPushFailed(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json() if response.content else None

    def _find(self, endpoint: str, filter_text: str) -> str | None:
        found = self._call("GET", endpoint, filter=filter_text)
        return found["Resources"][0]["id"] if found.get("Resources") else None

    def ensure_user(self, user: DemoUser) -> str:
        existing = self._find("/Users", f'userName eq "{user.email}"')
        if existing:
            return existing
        body = {
            "schemas": USER_SCHEMAS,
            "externalId": user.object_id,
            "userName": user.email,
            "active": True,
            "emails": [{"primary": True, "type": "work", "value": user.email}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": f"{user.first_name} {user.last_name}", "familyName": user.last_name,
                     "givenName": user.first_name},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": user.department or None},
        }  # fmt: skip
        return self._call("POST", "/Users", body)["id"]

    def ensure_member(self, group: str, user_id: str) -> None:
        group_id = self._find("/Groups", f'displayName eq "{group}"')
        if group_id is None:
            body = {"schemas": GROUP_SCHEMAS, "displayName": group, "meta": {"resourceType": "Group"}}
            group_id = self._call("POST", "/Groups", body)["id"]
        self._call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}
        ]})  # fmt: skip

    def disable(self, user: DemoUser) -> str:
        """Provision (if needed), then disable; returns the SCIM id."""
        user_id = self.ensure_user(user)
        for group in self.group_names(user):
            self.ensure_member(group, user_id)
        self._call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"}
        ]})  # fmt: skip
        return user_id
