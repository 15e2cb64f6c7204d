"""The account-takeover scenarios of the trust review (/work/notes/review.md H1, H2, M1, M2), each shown to FAIL:
a SCIM client writes only addresses its upstream may assert at a login, takes no account another upstream
brought first, sees and changes only its own users and groups, renames a LearnUpon user only while the old
address is still that user's, and its 409s name nobody else."""

from __future__ import annotations

import logging

import pytest

from broker.config import config_from_dict
from broker.jobs.scim_push import push_scim_user, scim_job_id
from broker.model import Claims
from broker.scim.mapping import portals_for
from broker.scim.state import ScimState, split_tenant, tenant_name
from broker.store import keys
from broker.tools.check.settings import check_trust_boundaries
from tests.scim.conftest import OKTA_TOKEN, Scim, scim_config
from tests.scim.test_email_change import USER, rename

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
VICTIM = "vic.tim@fabrikam.example"  # Okta's domain: an Okta JIT user in academy


def as_user(address: str) -> dict:
    return {**USER, "userName": address, "emails": [{"value": address, "type": "work", "primary": True}]}


def audits(caplog: pytest.LogCaptureFixture, event: str) -> list[dict]:
    return [r.audit for r in caplog.records if getattr(r, "audit", {}).get("event") == event]


def first_upstream(scim: Scim, portal: str, address: str) -> str | None:
    raw = scim.app.extensions["broker"].store.get(keys.first_upstream(portal, address))
    return raw.decode() if raw is not None else None


def set_first_upstream(scim: Scim, portal: str, address: str, upstream: str) -> None:
    scim.app.extensions["broker"].store.put(keys.first_upstream(portal, address), upstream.encode(), 3600)


# -- H1: the login's e-mail domain boundary, on every tenant ----------------------------------------------------


@pytest.mark.parametrize("prefix", ["/scim/v2/portals/academy", "/scim/v2"])
def test_a_client_cannot_write_an_address_its_upstream_may_not_assert(
    make_scim, prefix: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="broker.ops.audit")
    scim = make_scim(prefix=prefix)  # Entra's client: contoso.example, elsewhere.example
    victim = scim.portals["academy"].create_user(VICTIM, first_name="Vic", last_name="Tim")
    scim.clear_logs()
    refused = scim.call("POST", "/Users", as_user(VICTIM))
    assert refused.status_code == 403, refused.get_data(as_text=True)
    assert "fabrikam.example" in refused.json["detail"] and "1001" not in refused.json["detail"]
    assert scim.lu_calls() == 0 and scim.portals["academy"].get_user(victim["id"])["email"] == VICTIM
    assert scim.call("GET", "/Users", filter=f'userName eq "{VICTIM}"').json["totalResults"] == 0  # not kept
    event = audits(caplog, "trust.refused")[-1]
    assert event["check"] == "scim_email_domain" and event["email"] == VICTIM and event["client"] == "entra"
    assert event["reference"] in refused.json["detail"]


def test_a_client_cannot_rename_its_own_user_into_another_upstreams_domain(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    lu_id = scim.user("academy", "lee.moss@contoso.example")["id"]
    scim.clear_logs()
    assert rename(scim, user_id, "mallory@fabrikam.example").status_code == 403
    assert (
        scim.lu_calls() == 0
        and scim.portals["academy"].get_user(lu_id)["email"] == "lee.moss@contoso.example"
    )
    assert scim.call("GET", f"/Users/{user_id}").json["userName"] == "lee.moss@contoso.example"


def test_a_group_rule_routes_no_foreign_address(keys, _fake_portals):
    """The review's global-tenant variant: a rule on groups (Sales* → academy, sales) must not route an
    address outside the client's upstream's domains, whatever groups it is in."""
    config = config_from_dict(scim_config(keys, _fake_portals[1].url))
    foreign = Claims(email=VICTIM, groups=("Sales EMEA",))
    assert portals_for(config, foreign, "entra", None) == []
    assert portals_for(config, foreign, "entra", "academy") == []
    own = Claims(email="lee.moss@contoso.example", groups=("Sales EMEA",))
    assert portals_for(config, own, "entra", None) == ["academy", "sales"]


def test_a_group_membership_cannot_smuggle_a_foreign_user_in(scim: Scim):
    group_id = scim.call("POST", "/Groups", {"schemas": [GROUP], "displayName": "Sales EMEA"}).json["id"]
    assert scim.call("POST", "/Users", as_user(VICTIM)).status_code == 403  # never stored, so never a member
    assert scim.call("GET", f"/Groups/{group_id}").json.get("members") in (None, [])


# -- H1: first-upstream records (account linking), as the login keeps them -----------------------------------


def test_a_client_does_not_adopt_an_account_another_upstream_brought_first(
    scim: Scim, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="broker.ops.audit")
    address = "lee.moss@contoso.example"
    jit = scim.portals["academy"].create_user(address, first_name="Jit", last_name="Login")
    set_first_upstream(scim, "academy", address, "okta")  # an Okta login brought it (unscoped days, say)
    refused = scim.call("POST", "/Users", USER)
    assert refused.status_code == 409 and refused.json["scimType"] == "uniqueness"
    assert address not in refused.json["detail"] and "academy" not in refused.json["detail"]
    assert "okta" not in refused.json["detail"] and str(jit["id"]) not in refused.json["detail"]
    assert scim.portals["academy"].get_user(jit["id"])["first_name"] == "Jit"  # not adopted, not changed
    assert first_upstream(scim, "academy", address) == "okta"
    event = audits(caplog, "trust.refused")[-1]
    assert (
        event["check"] == "scim_account_linking"
        and event["portal"] == "academy"
        and event["email"] == address
    )


def test_a_client_adopts_an_account_its_own_upstream_brought_or_linking_allows(make_scim):
    address = "lee.moss@contoso.example"
    scim = make_scim()
    jit = scim.portals["academy"].create_user(address, first_name="Jit", last_name="Login")
    set_first_upstream(scim, "academy", address, "entra")
    assert scim.call("POST", "/Users", USER).status_code == 201
    assert scim.portals["academy"].get_user(jit["id"])["first_name"] == "Lee"  # adopted

    linking = make_scim(portals__academy__account_linking="allow")
    set_first_upstream(linking, "academy", "nia@contoso.example", "okta")
    assert linking.call("POST", "/Users", as_user("nia@contoso.example")).status_code == 201


def test_a_created_user_records_the_clients_upstream_and_a_rename_moves_it(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    assert first_upstream(scim, "academy", "lee.moss@contoso.example") == "entra"
    assert rename(scim, user_id, "lee.moss-hall@contoso.example").status_code == 204
    assert first_upstream(scim, "academy", "lee.moss-hall@contoso.example") == "entra"
    assert first_upstream(scim, "academy", "lee.moss@contoso.example") is None


def test_a_rename_onto_an_address_another_upstream_brought_is_refused(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    lu_id = scim.user("academy", "lee.moss@contoso.example")["id"]
    set_first_upstream(scim, "academy", "taken@contoso.example", "okta")
    scim.clear_logs()
    refused = rename(scim, user_id, "taken@contoso.example")
    assert refused.status_code == 409 and "taken@" not in refused.json["detail"]
    assert (
        scim.lu_calls() == 0
        and scim.portals["academy"].get_user(lu_id)["email"] == "lee.moss@contoso.example"
    )


# -- a SCIM client with no upstream -------------------------------------------------------------------------------


def test_a_client_without_upstream_writes_no_owned_domain_and_check_warns(make_scim, keys, _fake_portals):
    scim = make_scim(scim__clients=[{"name": "hr", "token_sha256_env": "SCIM_TEST_ENTRA_TOKEN_SHA256"}])
    assert scim.call("POST", "/Users", USER).status_code == 403  # contoso.example is Entra's
    assert scim.call("POST", "/Users", as_user(VICTIM)).status_code == 403  # fabrikam.example is Okta's
    assert scim.call("POST", "/Users", as_user("guest@unowned.example")).status_code == 201
    config = config_from_dict(scim_config(keys, _fake_portals[1].url, scim__clients=[
        {"name": "hr", "token_sha256_env": "SCIM_TEST_ENTRA_TOKEN_SHA256"}]))  # fmt: skip
    warned = [r for r in check_trust_boundaries(config) if r.name == "scim.clients.0.upstream"]
    assert warned and warned[0].status == "WARN" and "hr" in warned[0].detail


# -- H2: each client sees and changes only its own users and groups ------------------------------------------


def test_another_client_cannot_read_change_or_delete_a_clients_user(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]  # Entra's client
    lu_id = scim.user("academy", "lee.moss@contoso.example")["id"]
    listed = scim.call("GET", "/Users", token=OKTA_TOKEN)
    assert listed.status_code == 200 and listed.json["totalResults"] == 0
    assert scim.call("GET", "/Users", token=OKTA_TOKEN, filter=f'id eq "{user_id}"').json["totalResults"] == 0
    found = scim.call("GET", "/Users", token=OKTA_TOKEN, filter='userName eq "lee.moss@contoso.example"')
    assert found.json["totalResults"] == 0
    assert scim.call("GET", f"/Users/{user_id}", token=OKTA_TOKEN).status_code == 404
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "name.givenName", "value": "X"}]}
    assert scim.call("PATCH", f"/Users/{user_id}", patch, token=OKTA_TOKEN).status_code == 404
    put = {**USER, "id": user_id, "userName": "mallory@fabrikam.example"}
    assert scim.call("PUT", f"/Users/{user_id}", put, token=OKTA_TOKEN).status_code == 404
    assert scim.call("DELETE", f"/Users/{user_id}", token=OKTA_TOKEN).status_code == 404
    lu = scim.portals["academy"].get_user(lu_id)
    assert lu["enabled"] is True and lu["first_name"] == "Lee" and lu["email"] == "lee.moss@contoso.example"
    assert scim.call("GET", f"/Users/{user_id}").status_code == 200  # still Entra's


def test_another_clients_group_cannot_take_in_a_clients_user(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]  # Entra's client
    lu_id = scim.user("academy", "lee.moss@contoso.example")["id"]
    group = {"schemas": [GROUP], "displayName": "Sales Z", "members": [{"value": user_id}]}
    refused = scim.call("POST", "/Groups", group, token=OKTA_TOKEN)
    assert refused.status_code == 400 and refused.json["scimType"] == "invalidValue"
    group_id = scim.call("POST", "/Groups", {**group, "members": []}, token=OKTA_TOKEN).json["id"]
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
    }
    assert scim.call("PATCH", f"/Groups/{group_id}", add, token=OKTA_TOKEN).status_code == 400
    assert scim.call("GET", f"/Groups/{group_id}").status_code == 404  # and Entra does not see Okta's group
    assert scim.portals["academy"].get_user(lu_id)["email"] == "lee.moss@contoso.example"
    assert scim.user("sales", "lee.moss@contoso.example") is None


def test_records_from_before_clients_were_separated_belong_to_no_client(scim: Scim):
    store = scim.app.extensions["broker"].store
    legacy = ScimState(store, "all")
    legacy.save(
        "User", "0" * 32, {"resource": {**USER, "id": "0" * 32}, "seq": legacy.number("User", "0" * 32)}
    )
    assert scim.call("GET", f"/Users/{'0' * 32}").status_code == 404
    assert scim.call("GET", f"/Users/{'0' * 32}", token=OKTA_TOKEN).status_code == 404
    assert scim.call("POST", "/Users", USER).status_code == 201  # the IdP creates it again


def test_a_job_runs_under_the_owning_clients_upstream(scim: Scim):
    """A job names the tenant's client; whoever queued it, it pushes under that client's upstream (under
    Okta's, Entra's contoso user would not be routed to academy and would be disabled there)."""
    user_id = scim.call("POST", "/Users", USER).json["id"]
    lu_id = scim.user("academy", "lee.moss@contoso.example")["id"]
    runtime = scim.app.extensions["broker"]
    tenant = tenant_name("entra", None)
    done = push_scim_user(runtime, tenant=tenant, user_id=user_id, portal="academy", client="okta",
                          upstream="okta")  # fmt: skip
    assert "0 LearnUpon call" in done
    assert scim.portals["academy"].get_user(lu_id)["enabled"] is True
    gone = push_scim_user(runtime, tenant="all", user_id=user_id, portal="academy", client="okta",
                          upstream="okta")  # fmt: skip
    assert "no configured SCIM client" in gone


def test_tenant_names_and_job_ids():
    assert split_tenant(tenant_name("entra", None)) == ("entra", None)
    assert split_tenant(tenant_name("a.b-c", "academy")) == ("a.b-c", "academy")
    assert split_tenant("portal.academy") == (None, "academy") and split_tenant("all") == (None, None)
    ids = {
        scim_job_id(tenant_name(c, p), "u1", "academy") for c in ("entra", "okta") for p in (None, "academy")
    }
    assert len(ids) == 4 and all(i.replace("-", "").replace("_", "").isalnum() for i in ids)


# -- M1: a rename by the stored old address must not rename somebody else ----------------------------------


def test_a_stale_old_address_does_not_rename_a_different_learnupon_user(
    scim: Scim, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="broker.ops.audit")
    user_id = scim.call("POST", "/Users", USER).json["id"]
    academy = scim.portals["academy"]
    lee = academy.find_user("lee.moss@contoso.example")["id"]
    academy.update_user(lee, new_email="lee.private@elsewhere.example")  # renamed by hand
    other = academy.create_user("lee.moss@contoso.example", first_name="Other", last_name="Person")  # reused
    academy.clear_log()
    refused = rename(scim, user_id, "lee.moss-hall@contoso.example")
    assert refused.status_code == 409, refused.get_data(as_text=True)
    assert str(other["id"]) not in refused.json["detail"] and "lee.moss" not in refused.json["detail"]
    assert [(r.method, r.path) for r in academy.request_log()] == [("GET", "users/search")]  # no PUT
    assert academy.get_user(other["id"])["email"] == "lee.moss@contoso.example"
    assert academy.get_user(other["id"])["first_name"] == "Other"
    assert academy.get_user(lee)["email"] == "lee.private@elsewhere.example"
    event = audits(caplog, "scim.user.refused")[-1]
    assert "by hand" in event["reason"] and str(other["id"]) in event["reason"]
