from tests.scim.conftest import Scim

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "alex@contoso.example",
    "externalId": "alex",
    "active": True,
    "name": {"givenName": "Alex", "familyName": "Morgan"},
    "emails": [{"primary": True, "type": "work", "value": "alex@contoso.example"}],
}


def test_smoke(scim: Scim):
    r = scim.call("POST", "/Users", USER)
    print(r.status_code, r.get_data(as_text=True))
    assert r.status_code == 201
    uid = r.json["id"]
    assert scim.user("academy", "alex@contoso.example")["first_name"] == "Alex"
    r = scim.call("GET", "/Users", filter='userName eq "alex@contoso.example"')
    print(r.status_code, r.get_data(as_text=True))
    r = scim.call("PATCH", f"/Users/{uid}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
    print(r.status_code, r.get_data(as_text=True))
    assert scim.user("academy", "alex@contoso.example")["enabled"] is False
    r = scim.call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales Team"})
    gid = r.json["id"]
    r = scim.call("PATCH", f"/Groups/{gid}", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}]})
    print(r.status_code, r.get_data(as_text=True))
    print(scim.portals["sales"].users(), scim.portals["academy"].groups())
    r = scim.call("GET", f"/Users/{uid}")
    print(r.get_data(as_text=True))
