"""A user's new address reaches the same LearnUpon user (LearnUpon's documented `PUT users/0` with the current
`email` and `new_email`, docs.learnupon.com/api "Update a user"), never a second user: the old address is looked
up first and must still be the broker's LearnUpon user. An address another LearnUpon user holds is refused with a
SCIM 409 (whose detail names nobody else) and an audit event (which has the specifics), and nothing changes."""

from __future__ import annotations

import logging

import pytest

from tests.scim.conftest import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "lee.moss@contoso.example",
    "name": {"givenName": "Lee", "familyName": "Moss"},
    "emails": [{"value": "lee.moss@contoso.example", "type": "work", "primary": True}],
    "active": True,
}


def rename(scim: Scim, user_id: str, address: str):
    return scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "userName", "value": address},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": address}]})  # fmt: skip


def test_a_new_address_renames_the_same_learnupon_user_in_two_calls(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    academy = scim.portals["academy"]
    lu_id = academy.find_user("lee.moss@contoso.example")["id"]
    academy.clear_log()
    assert rename(scim, user_id, "lee.moss-hall@contoso.example").status_code == 204
    assert [(r.method, r.path, r.status) for r in academy.request_log()] == [
        ("GET", "users/search", 200),  # the old address is still the broker's user (review M1)
        ("PUT", "users/0", 200),
    ]
    assert academy.get_user(lu_id)["email"] == "lee.moss-hall@contoso.example"
    assert academy.find_user("lee.moss@contoso.example") is None and len(academy.users()) == 1
    academy.clear_log()  # the next change goes by id, with the new address known
    scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "name.givenName", "value": "Leigh"}]})  # fmt: skip
    assert [(r.method, r.path) for r in academy.request_log()] == [("PUT", f"users/{lu_id}")]


def test_an_address_another_learnupon_user_holds_is_refused_and_audited(
    scim: Scim, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="broker.ops.audit")
    user_id = scim.call("POST", "/Users", USER).json["id"]
    academy = scim.portals["academy"]
    other = academy.create_user(
        "jit.first@contoso.example", first_name="Jit", last_name="First"
    )  # a JIT login
    refused = rename(scim, user_id, "jit.first@contoso.example")
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert refused.json["scimType"] == "uniqueness"
    detail = refused.json["detail"]  # names no other user, portal or LearnUpon id (review M2)
    assert "jit.first" not in detail and "academy" not in detail and str(other["id"]) not in detail
    assert academy.find_user("lee.moss@contoso.example") is not None  # nothing changed in LearnUpon
    assert academy.get_user(other["id"])["first_name"] == "Jit" and len(academy.users()) == 2
    assert scim.call("GET", f"/Users/{user_id}").json["userName"] == "lee.moss@contoso.example"  # nor in SCIM
    events = [r.audit for r in caplog.records if getattr(r, "audit", {}).get("event") == "scim.user.refused"]
    assert events and events[-1]["portal"] == "academy" and "merge" in events[-1]["reason"]
    assert str(other["id"]) in events[-1]["reason"] and events[-1]["reference"] in detail


def test_a_retry_after_the_rename_was_made_finishes_without_a_second_user(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    academy = scim.portals["academy"]
    lu_id = academy.find_user("lee.moss@contoso.example")["id"]
    # LearnUpon made the change but the broker never saw the answer (as if the reply was lost)
    academy.update_user(lu_id, new_email="lee.moss-hall@contoso.example")
    academy.clear_log()
    assert rename(scim, user_id, "lee.moss-hall@contoso.example").status_code == 204
    assert [(r.method, r.path, r.status) for r in academy.request_log()] == [
        ("GET", "users/search", 404),  # the old address is gone: was the change made already?
        ("GET", f"users/{lu_id}", 200),
    ]
    assert len(academy.users()) == 1


def test_a_learnupon_user_renamed_by_hand_is_not_overwritten(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    academy = scim.portals["academy"]
    lu_id = academy.find_user("lee.moss@contoso.example")["id"]
    academy.update_user(lu_id, new_email="lee.private@elsewhere.example")  # changed in LearnUpon by hand
    refused = rename(scim, user_id, "lee.moss-hall@contoso.example")
    assert refused.status_code == 409 and "lee.private" not in refused.json["detail"]
    assert academy.get_user(lu_id)["email"] == "lee.private@elsewhere.example" and len(academy.users()) == 1


def test_the_fake_learnupon_refuses_an_undocumented_email_change_by_id(scim: Scim):
    """The strict fake accepts only the documented form, so a client that guessed would fail here."""
    import requests

    from tests.scim.conftest import API_KEY, API_USER

    scim.call("POST", "/Users", USER)
    academy = scim.portals["academy"]
    lu_id = academy.find_user("lee.moss@contoso.example")["id"]
    base = scim.app.extensions["broker"].portals["academy"].learnupon.base_url
    for body in ({"new_email": "x@contoso.example"}, {"email": "x@contoso.example"}):
        answer = requests.put(
            f"{base}users/{lu_id}", json={"User": body}, auth=(API_USER, API_KEY), timeout=5
        )
        assert answer.status_code == 400, body
    assert academy.get_user(lu_id)["email"] == "lee.moss@contoso.example"
