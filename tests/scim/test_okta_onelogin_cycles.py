"""Okta's and OneLogin's provisioning cycles in the request shapes their SCIM guides show.

Okta (SCIM 2.0 guide): query by userName with startIndex/count, create with `groups: []` and a password (never
kept), PUT the whole profile on updates, PATCH `replace` with a value object for `active`, never DELETE a user;
group push: create with empty members, PATCH replace with `id` and `displayName`, add members, remove with a
filtered path. OneLogin: create, PUT the whole user on updates (also to suspend), DELETE to deprovision.
Values are ours; the partners portal (Okta upstream) deletes leavers (`on_deprovision: delete`)."""

from __future__ import annotations

from tests.scim.conftest import OKTA_TOKEN, Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


def okta_user(first: str = "Test", active: bool = True, user_id: str | None = None) -> dict:
    body = {
        "schemas": [USER_SCHEMA],
        "userName": "test.user@fabrikam.example",
        "name": {"givenName": first, "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@fabrikam.example", "type": "work"}],
        "displayName": f"{first} User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq-not-kept",
        "active": active,
    }
    if user_id:
        body["id"] = user_id
    return body


def test_okta_user_cycle_put_profile_patch_active(make_scim):
    scim: Scim = make_scim(token=OKTA_TOKEN)
    email = "test.user@fabrikam.example"
    found = scim.call("GET", "/Users", filter=f'userName eq "{email}"', startIndex="1", count="100")
    assert found.status_code == 200 and found.json["totalResults"] == 0
    created = scim.call("POST", "/Users", okta_user())
    assert created.status_code == 201, created.json
    user_id = created.json["id"]
    assert "password" not in created.json
    assert scim.user("partners", email)["first_name"] == "Test"
    assert scim.user("academy", email) is None  # fabrikam.example routes to partners only

    assert scim.call("GET", f"/Users/{user_id}").json["userName"] == email
    scim.clear_logs()
    replaced = scim.call("PUT", f"/Users/{user_id}", okta_user("Another", user_id=user_id))
    assert replaced.status_code == 200, replaced.json
    assert scim.user("partners", email)["first_name"] == "Another"
    assert scim.lu_calls() == 1

    scim.clear_logs()  # the same PUT again changes nothing and calls nothing
    assert scim.call("PUT", f"/Users/{user_id}", okta_user("Another", user_id=user_id)).status_code == 200
    assert scim.lu_calls() == 0

    deactivated = scim.call("PATCH", f"/Users/{user_id}", {
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]
    })  # fmt: skip
    assert deactivated.status_code in (200, 204)
    assert scim.user("partners", email) is None  # partners deletes leavers
    assert [(r.method, r.path.split("/")[0]) for r in scim.portals["partners"].request_log()] == [
        ("DELETE", "users")
    ]
    assert scim.call("GET", f"/Users/{user_id}").json["active"] is False

    reactivated = scim.call("PATCH", f"/Users/{user_id}", {
        "schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": True}}]
    })  # fmt: skip
    assert reactivated.status_code in (200, 204)
    assert scim.user("partners", email)["enabled"] is True  # created again


def test_okta_group_push(make_scim):
    scim: Scim = make_scim(token=OKTA_TOKEN)
    user_id = scim.call("POST", "/Users", okta_user()).json["id"]
    group = scim.call("POST", "/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Partners EMEA", "members": []
    })  # fmt: skip
    assert group.status_code == 201
    group_id = group.json["id"]
    renamed = scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"id": group_id, "displayName": "Partners Europe"}}
    ]})  # fmt: skip
    assert renamed.status_code in (200, 204), renamed.get_data(as_text=True)
    added = scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": user_id, "display": "test.user@fabrikam.example"}]}
    ]})  # fmt: skip
    assert added.status_code in (200, 204)
    partners = scim.portals["partners"]
    lu_user = partners.find_user("test.user@fabrikam.example")
    assert [g["title"] for g in partners.groups_of(lu_user["id"])] == ["Partners Europe"]
    removed = scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "remove", "path": f'members[value eq "{user_id}"]'}
    ]})  # fmt: skip
    assert removed.status_code in (200, 204)
    assert partners.groups_of(lu_user["id"]) == []
    assert scim.call("DELETE", f"/Groups/{group_id}").status_code == 204


def test_onelogin_cycle_put_to_suspend_then_delete(scim: Scim):
    email = "robin.doe@contoso.example"
    body = {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "externalId": "58412339",
        "name": {"givenName": "Robin", "familyName": "Doe"},
        "emails": [{"value": email, "primary": True}],
        "active": True,
    }
    assert scim.call("GET", "/Users", filter=f'userName eq "{email}"').json["totalResults"] == 0
    created = scim.call("POST", "/Users", body)
    assert created.status_code == 201
    user_id = created.json["id"]
    assert scim.user("academy", email)["first_name"] == "Robin"
    changed = scim.call(
        "PUT", f"/Users/{user_id}", {**body, "name": {"givenName": "Robyn", "familyName": "Doe"}}
    )
    assert changed.status_code == 200
    assert scim.user("academy", email)["first_name"] == "Robyn"
    suspended = scim.call("PUT", f"/Users/{user_id}", {**body, "name": {"givenName": "Robyn", "familyName": "Doe"},
                                                      "active": False})  # fmt: skip
    assert suspended.status_code == 200 and suspended.json["active"] is False
    assert scim.user("academy", email)["enabled"] is False
    assert scim.call("DELETE", f"/Users/{user_id}").status_code == 204
    assert scim.user("academy", email)["enabled"] is False  # academy disables rather than deletes
    assert scim.call("GET", f"/Users/{user_id}").status_code == 404
