"""Okta's and OneLogin's provisioning cycles in the request shapes their documentation shows. Values are ours;
the partners portal (Okta upstream) deletes leavers (`on_deprovision: delete`).

Provenance:
- OKTA: "SCIM 2.0 Protocol Reference" (Okta developer docs), https://developer.okta.com/docs/reference/scim/scim-20/
  — query by `userName eq` with `startIndex=1&count=100`, create with `groups: []` and a password (never kept),
  GET then PUT of the whole user for profile updates (with `middleName`, `emails[].display`, `meta`), PATCH
  `replace` with a value object `{"active": false}` to deactivate (apps built with the App Integration Wizard
  send a PUT with `active: false` instead), never a DELETE of a user; group push: POST with `members: []`,
  PATCH `replace` of `{id, displayName}` (sent with every membership update), one PATCH removing by
  `members[value eq "…"]` and adding a `members` list, a full push by `replace` of `members`, DELETE; imports
  page by `startIndex`/`count=100`; a user that exists answers 409.
- ONELOGIN: "Step 4. Test Your SCIM Implementation", https://developers.onelogin.com/scim/test-your-scim — when
  a user is deleted in OneLogin the app does Delete, Suspend or nothing; and OneLogin's SCIM custom connector
  article (KB0013904, https://onelogin.service-now.com/kb?id=kb_article_view&sysparm_article=KB0013904) with the
  "SCIM Provisioner with SAML (SCIM v2 Enterprise)" JSON template: `userName` from `scimusername`, `name`,
  work email, enterprise `department` and `manager {value, displayName}`. OneLogin does not publish which HTTP
  method carries an update or a suspension: both a PUT of the whole user and a PATCH of `active` are tested.
"""

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


def test_okta_get_then_put_profile_with_display_and_middle_name(make_scim):
    """OKTA "Update a specific User (PUT)": GET the user, then PUT it whole with the changed attributes."""
    scim: Scim = make_scim(token=OKTA_TOKEN)
    user_id = scim.call("POST", "/Users", okta_user()).json["id"]
    got = scim.call("GET", f"/Users/{user_id}")
    assert got.status_code == 200 and "password" not in got.json
    scim.clear_logs()
    body = {
        "schemas": [USER_SCHEMA], "id": user_id, "userName": "test.user@fabrikam.example",
        "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
        "emails": [{"primary": True, "value": "test.user@fabrikam.example", "type": "work",
                    "display": "test.user@fabrikam.example"}],
        "active": True, "groups": [], "meta": {"resourceType": "User"},
    }  # fmt: skip
    replaced = scim.call("PUT", f"/Users/{user_id}", body)
    assert replaced.status_code == 200, replaced.get_data(as_text=True)
    assert replaced.json["name"]["middleName"] == "Excited"
    assert scim.user("partners", "test.user@fabrikam.example")["first_name"] == "Another"
    assert [(r.method, r.path.split("/")[0]) for r in scim.portals["partners"].request_log()] == [
        ("PUT", "users")
    ]


def test_okta_aiw_app_deactivates_with_put(make_scim):
    """OKTA: custom apps made with the App Integration Wizard send every update, `active: false` too, by PUT."""
    scim: Scim = make_scim(token=OKTA_TOKEN)
    user_id = scim.call("POST", "/Users", okta_user()).json["id"]
    deactivated = scim.call("PUT", f"/Users/{user_id}", okta_user(active=False, user_id=user_id))
    assert deactivated.status_code == 200 and deactivated.json["active"] is False
    assert scim.user("partners", "test.user@fabrikam.example") is None  # partners deletes leavers


def test_okta_create_of_an_existing_user_answers_409(make_scim):
    """OKTA "Create the User": a user that already exists must answer 409 so Okta stops."""
    scim: Scim = make_scim(token=OKTA_TOKEN)
    assert scim.call("POST", "/Users", okta_user()).status_code == 201
    scim.clear_logs()
    again = scim.call("POST", "/Users", okta_user())
    assert again.status_code == 409 and again.json["scimType"] == "uniqueness"
    assert scim.lu_calls() == 0 and len(scim.portals["partners"].users()) == 1


def test_okta_group_push_remove_and_add_in_one_patch_then_full_push(make_scim):
    """OKTA "Update specific Group membership": one PATCH removing a member by filter and adding another, the
    name `replace` that comes with every membership update, and a full push by `replace` of `members`."""
    scim: Scim = make_scim(token=OKTA_TOKEN)
    first = scim.call("POST", "/Users", okta_user()).json["id"]
    second = scim.call("POST", "/Users", {**okta_user(), "userName": "ana.diaz@fabrikam.example",
                                          "externalId": "00ujl29u0le5T6Aj10h8",
                                          "emails": [{"primary": True, "value": "ana.diaz@fabrikam.example",
                                                      "type": "work"}]}).json["id"]  # fmt: skip
    group_id = scim.call("POST", "/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Test SCIMv2", "members": []
    }).json["id"]  # fmt: skip
    ops = [
        {"op": "add", "path": "members", "value": [{"value": first, "display": "test.user@fabrikam.example"}]}
    ]
    assert (
        scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": ops}).status_code
        == 204
    )
    swap = scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "value": {"id": group_id, "displayName": "Test SCIMv2"}},
        {"op": "remove", "path": f'members[value eq "{first}"]'},
        {"op": "add", "path": "members", "value": [{"value": second, "display": "ana.diaz@fabrikam.example"}]},
    ]})  # fmt: skip
    assert swap.status_code == 204, swap.get_data(as_text=True)
    partners = scim.portals["partners"]

    def titles(email: str) -> list[str]:
        return [g["title"] for g in partners.groups_of(partners.find_user(email)["id"])]

    assert titles("test.user@fabrikam.example") == [] and titles("ana.diaz@fabrikam.example") == [
        "Test SCIMv2"
    ]
    full = scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "members", "value": [
            {"value": first, "display": "test.user@fabrikam.example"},
            {"value": second, "display": "ana.diaz@fabrikam.example"}]}]})  # fmt: skip
    assert full.status_code == 204
    assert titles("test.user@fabrikam.example") == titles("ana.diaz@fabrikam.example") == ["Test SCIMv2"]
    listed = scim.call("GET", "/Groups", startIndex="1", count="100")
    assert listed.json["totalResults"] == 1 and listed.json["startIndex"] == 1
    users = scim.call("GET", "/Users", startIndex="1", count="100")
    assert users.json["totalResults"] == 2 and isinstance(users.json["itemsPerPage"], int)


ONELOGIN_ENTERPRISE_USER = {
    "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "userName": "sam.ortiz@contoso.example",
    "name": {"familyName": "Ortiz", "givenName": "Sam"},
    "title": "Analyst",
    "emails": [{"value": "sam.ortiz@contoso.example", "type": "work", "primary": True}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
        "department": "Finance", "manager": {"value": "58412340", "displayName": "Ada Byron"}},
}  # fmt: skip


def test_onelogin_enterprise_template_then_patch_suspend_and_delete(scim: Scim):
    """ONELOGIN "SCIM v2 Enterprise" template (department, manager with displayName) → LearnUpon CustomData;
    a suspension sent as a PATCH of `active`; then Delete."""
    created = scim.call("POST", "/Users", ONELOGIN_ENTERPRISE_USER)
    assert created.status_code == 201, created.get_data(as_text=True)
    user_id = created.json["id"]
    lu = scim.user("academy", "sam.ortiz@contoso.example")
    assert lu["first_name"] == "Sam" and lu["CustomData"]["department"] == "Finance"
    suspended = scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "active", "value": False}]})  # fmt: skip
    assert suspended.status_code == 204
    assert scim.user("academy", "sam.ortiz@contoso.example")["enabled"] is False
    assert scim.call("DELETE", f"/Users/{user_id}").status_code == 204
    assert scim.call("GET", f"/Users/{user_id}").status_code == 404
