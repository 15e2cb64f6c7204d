"""How many LearnUpon calls a SCIM change costs, what the audit says, and state that outlives a restart."""

from __future__ import annotations

import logging

import pytest

from broker.store.connect import open_store
from tests.scim.conftest import Scim

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "nia.park@contoso.example",
    "name": {"givenName": "Nia", "familyName": "Park"},
    "active": True,
}


def patch(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_a_patch_that_changes_nothing_makes_no_learnupon_call(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    scim.clear_logs()
    for body in (
        patch({"op": "replace", "path": "name.givenName", "value": "Nia"}),
        patch({"op": "Replace", "path": "active", "value": "True"}),
        patch({"op": "replace", "value": {"userName": "nia.park@contoso.example"}}),
    ):
        assert scim.call("PATCH", f"/Users/{user_id}", body).status_code in (200, 204)
    assert scim.lu_calls() == 0


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "name.familyName", "value": "Parker"},
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "HR"},
        {"op": "replace", "path": "userName", "value": "nia.parker@contoso.example"},
    ],
    ids=["last-name", "active", "department", "email"],
)  # fmt: skip
def test_a_one_field_change_makes_at_most_two_learnupon_calls(scim: Scim, operation: dict):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    scim.clear_logs()
    assert scim.call("PATCH", f"/Users/{user_id}", patch(operation)).status_code in (200, 204)
    assert 1 <= scim.lu_calls() <= 2


def test_each_change_is_one_audit_event_with_the_learnupon_calls(
    scim: Scim, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="broker.ops.audit")
    user_id = scim.call("POST", "/Users", USER).json["id"]
    scim.call("PATCH", f"/Users/{user_id}", patch({"op": "replace", "path": "name.familyName", "value": "P"}))
    events = [r.audit for r in caplog.records if hasattr(r, "audit")]
    assert [e["event"] for e in events] == ["scim.user.created", "scim.user.updated"]
    assert events[0]["client"] == "entra" and events[0]["portals"] == {"academy": "created"}
    assert events[0]["learnupon_calls"] == {"academy": 1} and events[0]["email"] == "nia.park@contoso.example"


def test_per_portal_endpoint_writes_only_that_portal(make_scim):
    scim = make_scim(prefix="/scim/v2/portals/academy")
    body = {**USER, "userName": "someone@elsewhere.example"}  # no routing rule would give them a portal
    assert scim.call("POST", "/Users", body).status_code == 201
    assert scim.user("academy", "someone@elsewhere.example") is not None
    assert scim.user("sales", "someone@elsewhere.example") is None
    # the per-portal tenant is separate from /scim/v2
    all_portals = make_scim()
    assert all_portals.call("GET", "/Users").json["totalResults"] == 0
    missing = make_scim(prefix="/scim/v2/portals/nope")
    assert missing.call("GET", "/Users").status_code == 404


def test_a_user_routed_nowhere_is_kept_but_pushed_nowhere(scim: Scim):
    # a domain Entra owns but no routing rule names
    response = scim.call("POST", "/Users", {**USER, "userName": "guest@elsewhere.example"})
    assert response.status_code == 201
    assert scim.lu_calls() == 0


@pytest.mark.redis
def test_ids_and_state_survive_a_restart(make_scim, redis_url: str):
    first = make_scim(store=open_store(redis_url))
    user_id = first.call("POST", "/Users", USER).json["id"]
    group_id = first.call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                              "displayName": "All Staff",
                                              "members": [{"value": user_id}]}).json["id"]  # fmt: skip
    second = make_scim(store=open_store(redis_url))  # a new app and store connection: a restart
    second.clear_logs()
    found = second.call("GET", "/Users", filter='userName eq "nia.park@contoso.example"').json
    assert found["Resources"][0]["id"] == user_id
    assert found["Resources"][0]["groups"][0]["value"] == group_id
    assert second.call("PATCH", f"/Users/{user_id}", patch({"op": "replace", "path": "name.givenName",
                                                             "value": "Nia"})).status_code in (200, 204)  # fmt: skip
    assert second.lu_calls() == 0  # what was pushed is remembered too
