"""Microsoft Entra's provisioning cycle, request by request, in the shapes Microsoft documents. Only the example
values differ (our test domain, so the routing rules apply); each step checks what the fake LearnUpon portals
then hold.

Provenance (bodies follow the examples on these pages; field names, op spellings and value types as shown):
- TUTORIAL: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID",
  https://learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
  (section "SCIM protocol requests and responses": query by userName, create, PATCH "Replace" of
  `emails[type eq "work"].value` and `name.familyName`, PATCH "Replace" of `userName`, Disable User with
  `"value": false`, DELETE; groups created with Microsoft's extra schema URI and no members, read with
  `excludedAttributes=members`, members added and removed by PATCH "Add"/"Remove" with a `value` list;
  PATCH answers 204).
- KNOWN_ISSUES: "Known issues and resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra user
  provisioning service", https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
  (without the `aadOptscim062020` flag: `"Replace"` of `active` with the string `"False"`, `"Add"` of a
  single-valued attribute, one `"Replace"` per attribute, `"Remove"` of members with a `value` list; with the
  flag: lower-case ops, `false` as a boolean, a PATCH with no `path` and a value object keyed by attribute
  paths, member removal by `members[value eq "…"]`).
"""

from __future__ import annotations

from tests.scim.conftest import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CREATE_USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
    "active": True,
    "emails": [{"primary": True, "type": "work", "value": "test.user@contoso.example"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
    "roles": [],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales", "employeeNumber": "7001"},
}  # fmt: skip
CREATE_GROUP = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "Sales Team",
    "meta": {"resourceType": "Group"},
}  # fmt: skip


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_entra_user_cycle_create_update_disable_delete(scim: Scim):
    email = "test.user@contoso.example"
    # 1. Entra first asks whether the user exists: an empty list, and no LearnUpon call.
    found = scim.call("GET", "/Users", filter=f'userName eq "{CREATE_USER["userName"]}"')
    assert found.status_code == 200 and found.json["totalResults"] == 0 and found.json["Resources"] == []
    assert scim.lu_calls() == 0

    # 2. Create: one POST users to the portal the routing rules give (contoso.example → academy only).
    created = scim.call("POST", "/Users", CREATE_USER)
    assert created.status_code == 201, created.json
    assert created.headers["Content-Type"].startswith("application/scim+json")
    user_id = created.json["id"]
    assert created.headers["Location"].endswith(f"/scim/v2/Users/{user_id}")
    lu = scim.user("academy", email)
    assert lu["first_name"] == "givenName" and lu["last_name"] == "familyName" and lu["enabled"] is True
    assert lu["CustomData"] == {"department": "Sales", "employee_no": "7001"}
    assert scim.user("sales", email) is None and scim.user("partners", email) is None
    assert [(r.method, r.path) for r in scim.portals["academy"].request_log()] == [("POST", "users")]

    # 3. The query now finds it, from the store alone.
    scim.clear_logs()
    found = scim.call("GET", "/Users", filter=f'userName eq "{CREATE_USER["userName"]}"')
    assert found.json["totalResults"] == 1 and found.json["Resources"][0]["id"] == user_id
    assert scim.lu_calls() == 0

    # 4. Update, multi-valued properties: work email and family name in one PATCH → one PUT users/{id}.
    response = scim.call("PATCH", f"/Users/{user_id}", patch(
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updated.user@contoso.example"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    ))  # fmt: skip
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    assert scim.user("academy", email) is None
    lu = scim.user("academy", "updated.user@contoso.example")
    assert lu["last_name"] == "updatedFamilyName" and lu["id"] == scim.portals["academy"].users()[0]["id"]
    # the old address is still the broker's user; then LearnUpon's documented e-mail change: PUT users/0 with
    # the current email and new_email
    assert [(r.method, r.path, r.body) for r in scim.portals["academy"].request_log()] == [
        ("GET", "users/search", None),
        ("PUT", "users/0", {"User": {"last_name": "updatedFamilyName", "email": email,
                                     "new_email": "updated.user@contoso.example"}})
    ]  # fmt: skip

    # 5. Known issue: a PATCH value object whose keys are attribute paths.
    scim.clear_logs()
    response = scim.call(
        "PATCH", f"/Users/{user_id}", patch({"op": "Replace", "value": {"name.givenName": "Alex"}})
    )
    assert response.status_code in (200, 204)
    assert scim.user("academy", "updated.user@contoso.example")["first_name"] == "Alex"
    assert scim.lu_calls() == 1

    # 6. Unassigned or disabled in Entra: "Replace" active with the string "False" → enabled: false.
    scim.clear_logs()
    response = scim.call(
        "PATCH", f"/Users/{user_id}", patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert response.status_code in (200, 204)
    assert scim.user("academy", "updated.user@contoso.example")["enabled"] is False
    assert [(r.method, r.body) for r in scim.portals["academy"].request_log()] == [
        ("PUT", {"User": {"enabled": False}})
    ]
    got = scim.call("GET", f"/Users/{user_id}")
    assert got.json["active"] is False and "password" not in got.json

    # 7. Re-assigned: "True" enables again.
    response = scim.call(
        "PATCH", f"/Users/{user_id}", patch({"op": "Replace", "path": "active", "value": "True"})
    )
    assert scim.user("academy", "updated.user@contoso.example")["enabled"] is True

    # 8. Deleted later (after Entra's soft-delete window): the academy portal disables (its policy), the
    #    SCIM resource is gone.
    scim.call("PATCH", f"/Users/{user_id}", patch({"op": "Replace", "path": "active", "value": False}))
    scim.clear_logs()
    assert scim.call("DELETE", f"/Users/{user_id}").status_code == 204
    assert scim.user("academy", "updated.user@contoso.example")["enabled"] is False
    assert scim.lu_calls() == 0  # already disabled: nothing to do
    assert scim.call("GET", f"/Users/{user_id}").status_code == 404
    assert (
        scim.call("GET", "/Users", filter=f'userName eq "{CREATE_USER["userName"]}"').json["totalResults"]
        == 0
    )


def test_entra_group_cycle_routes_members_and_syncs_memberships(scim: Scim):
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    email = "test.user@contoso.example"
    created = scim.call("POST", "/Groups", CREATE_GROUP)
    assert created.status_code == 201, created.json
    group_id = created.json["id"]
    assert scim.portals["academy"].find_group("Sales Team") is None  # created when a member needs it

    # Entra looks the group up by displayName, without members.
    found = scim.call("GET", "/Groups", filter='displayName eq "Sales Team"', excludedAttributes="members")
    assert found.json["totalResults"] == 1 and found.json["Resources"][0]["id"] == group_id

    # Add member: "Sales Team" matches the Sales* routing rule → academy and sales; sales requires Sales*.
    response = scim.call("PATCH", f"/Groups/{group_id}", patch(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}
    ))  # fmt: skip
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    for portal in ("academy", "sales"):
        user = scim.user(portal, email)
        assert user is not None and user["enabled"] is True, portal
        assert [g["title"] for g in scim.portals[portal].groups_of(user["id"])] == ["Sales Team"]
        assert scim.portals[portal].find_group("Sales Team")["sso_sync"] is True
    assert scim.call("GET", f"/Users/{user_id}").json["groups"][0]["display"] == "Sales Team"

    # Rename (non-member attribute): the members move to the new LearnUpon group title.
    scim.call(
        "PATCH", f"/Groups/{group_id}", patch({"op": "Replace", "path": "displayName", "value": "Sales EMEA"})
    )
    academy_user = scim.user("academy", email)
    assert [g["title"] for g in scim.portals["academy"].groups_of(academy_user["id"])] == ["Sales EMEA"]

    # Remove member: out of the group in academy; no longer routed to sales → disabled there.
    response = scim.call("PATCH", f"/Groups/{group_id}", patch(
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": user_id}]}
    ))  # fmt: skip
    assert response.status_code in (200, 204)
    assert scim.portals["academy"].groups_of(academy_user["id"]) == []
    assert scim.user("academy", email)["enabled"] is True
    assert scim.user("sales", email)["enabled"] is False

    assert scim.call("DELETE", f"/Groups/{group_id}").status_code == 204
    assert scim.call("GET", f"/Groups/{group_id}").status_code == 404
    assert "groups" not in scim.call("GET", f"/Users/{user_id}").json


def test_entra_manager_as_bare_id_is_accepted(scim: Scim):
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    response = scim.call("PATCH", f"/Users/{user_id}", patch({
        "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value": "2819c223-7f76-453a-919d-413861904646",
    }))  # fmt: skip
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    got = scim.call("GET", f"/Users/{user_id}").json
    assert got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"] == (
        "2819c223-7f76-453a-919d-413861904646"
    )


def test_known_issues_patch_without_the_compliance_flag(scim: Scim):
    """KNOWN_ISSUES, "without feature flag": one capitalised "Replace" per attribute (display name, work email,
    names, externalId, employeeNumber), "Add" of a single-valued string, "Replace" of active with "False"."""
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    scim.clear_logs()
    response = scim.call("PATCH", f"/Users/{user_id}", patch(
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "pvlo.gtfd@contoso.example"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
         "value": "Eqpj"},
    ))  # fmt: skip
    assert response.status_code == 204, response.get_data(as_text=True)
    academy = scim.portals["academy"]
    lu = academy.find_user("pvlo.gtfd@contoso.example")
    assert lu is not None and academy.find_user("test.user@contoso.example") is None
    assert (lu["first_name"], lu["last_name"], lu["CustomData"]["employee_no"]) == ("Gtfd", "Pkqf", "Eqpj")
    # the old address's lookup, then one PUT carries every change
    assert len(academy.users()) == 1 and [r.method for r in academy.request_log()] == ["GET", "PUT"]

    scim.clear_logs()  # "Add" of an attribute LearnUpon does not hold: kept in SCIM, no LearnUpon call
    added = scim.call("PATCH", f"/Users/{user_id}", patch({"op": "Add", "path": "nickName", "value": "Babs"}))
    assert added.status_code == 204 and scim.lu_calls() == 0
    assert scim.call("GET", f"/Users/{user_id}").json["nickName"] == "Babs"

    disabled = scim.call(
        "PATCH", f"/Users/{user_id}", patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert disabled.status_code == 204
    assert academy.find_user("pvlo.gtfd@contoso.example")["enabled"] is False


def test_known_issues_patch_with_the_compliance_flag(scim: Scim):
    """KNOWN_ISSUES, "with feature flag" (aadOptscim062020): lower-case ops, a PATCH with no path whose value
    object is keyed by attribute paths, `active` as a boolean, members removed by a filtered path."""
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    scim.clear_logs()
    response = scim.call("PATCH", f"/Users/{user_id}", patch(
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "bjfe.kkom@contoso.example"},
        {"op": "replace", "value": {
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}},
    ))  # fmt: skip
    assert response.status_code == 204, response.get_data(as_text=True)
    lu = scim.user("academy", "bjfe.kkom@contoso.example")
    assert (lu["first_name"], lu["last_name"], lu["CustomData"]["employee_no"]) == ("Kkom", "Unua", "Aklq")
    got = scim.call("GET", f"/Users/{user_id}").json
    assert got["displayName"] == "Bjfe" and got["name"]["givenName"] == "Kkom"

    group_id = scim.call("POST", "/Groups", {**CREATE_GROUP, "displayName": "Sales North"}).json["id"]
    scim.call("PATCH", f"/Groups/{group_id}", patch(
        {"op": "add", "path": "members", "value": [{"value": user_id}]}
    ))  # fmt: skip
    lu_id = scim.user("academy", "bjfe.kkom@contoso.example")["id"]
    assert [g["title"] for g in scim.portals["academy"].groups_of(lu_id)] == ["Sales North"]
    removed = scim.call("PATCH", f"/Groups/{group_id}", patch(
        {"op": "remove", "path": f'members[value eq "{user_id}"]'}
    ))  # fmt: skip
    assert removed.status_code == 204
    assert scim.portals["academy"].groups_of(lu_id) == []
    assert scim.user("sales", "bjfe.kkom@contoso.example")["enabled"] is False  # no longer routed there

    disabled = scim.call(
        "PATCH", f"/Users/{user_id}", patch({"op": "replace", "path": "active", "value": False})
    )
    assert disabled.status_code == 204
    assert scim.user("academy", "bjfe.kkom@contoso.example")["enabled"] is False


def test_tutorial_single_valued_update_of_username_and_disable(scim: Scim):
    """TUTORIAL "Update User [Single-valued properties]": "Replace" of `userName` with an address, which then is
    the LearnUpon e-mail (the same LearnUpon user, renamed); "Disable User": "Replace" active with false."""
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    lu_id = scim.user("academy", "test.user@contoso.example")["id"]
    scim.clear_logs()
    response = scim.call("PATCH", f"/Users/{user_id}", patch(
        {"op": "Replace", "path": "userName", "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@contoso.example"}
    ))  # fmt: skip
    assert response.status_code == 204, response.get_data(as_text=True)
    renamed = scim.user("academy", "5b50642d-79fc-4410-9e90-4c077cdd1a59@contoso.example")
    assert renamed is not None and renamed["id"] == lu_id and len(scim.portals["academy"].users()) == 1
    disabled = scim.call("PATCH", f"/Users/{user_id}", {
        "Operations": [{"op": "Replace", "path": "active", "value": False}],
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    })  # fmt: skip
    assert disabled.status_code == 204
    assert scim.portals["academy"].get_user(lu_id)["enabled"] is False


def test_tutorial_lookups_and_test_connection(scim: Scim):
    """TUTORIAL: users are queried by `userName` or `emails[type eq "work"].value` (uniqueness attributes must
    be filterable); "Test Connection" queries a random GUID and wants 200 with an empty ListResponse; groups
    are read with `excludedAttributes=members`."""
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    by_mail = scim.call("GET", "/Users", filter='emails[type eq "work"].value eq "test.user@contoso.example"')
    assert by_mail.json["totalResults"] == 1 and by_mail.json["Resources"][0]["id"] == user_id
    probe = scim.call("GET", "/Users", filter='userName eq "6f1c0f4e-5d9b-4a53-9a57-0b6a3c6e8d21"')
    assert probe.status_code == 200
    assert probe.json["totalResults"] == 0 and probe.json["Resources"] == []
    group_id = scim.call("POST", "/Groups", CREATE_GROUP).json["id"]
    scim.call(
        "PATCH", f"/Groups/{group_id}", patch({"op": "Add", "path": "members", "value": [{"value": user_id}]})
    )
    got = scim.call("GET", f"/Groups/{group_id}", excludedAttributes="members")
    assert got.status_code == 200 and "members" not in got.json and got.json["displayName"] == "Sales Team"


def test_tutorial_sample_code_manager_patch_is_read_as_the_enterprise_manager(scim: Scim):
    """TUTORIAL "Example 5" (the sample-code walk-through): "Add" on the bare path `manager` with a one-element
    list of `$ref`/`value`. It is the enterprise extension's manager (the tutorial's attribute table maps it
    there), so it is read as such instead of failing the whole PATCH."""
    user_id = scim.call("POST", "/Users", CREATE_USER).json["id"]
    response = scim.call("PATCH", f"/Users/{user_id}", patch({"op": "Add", "path": "manager", "value": [
        {"$ref": "http://broker.test/scim/v2/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
         "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}]}))  # fmt: skip
    assert response.status_code == 204, response.get_data(as_text=True)
    got = scim.call("GET", f"/Users/{user_id}").json
    assert got["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"] == (
        "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    )


def test_an_unquoted_filter_value_is_refused_not_guessed(scim: Scim):
    """TUTORIAL's sample-code "Example 1" writes `externalId eq jyoung` without quotes (RFC 7644 wants a quoted
    string; the tutorial's request reference quotes it). It answers 400 invalidFilter, never a wrong list."""
    scim.call("POST", "/Users", CREATE_USER)
    response = scim.call("GET", "/Users", filter="externalId eq jyoung")
    assert response.status_code == 400 and response.json["scimType"] == "invalidFilter"
