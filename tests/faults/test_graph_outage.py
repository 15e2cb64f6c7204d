"""Microsoft Graph down while users come back: logins go on with the groups known, and no membership is
removed — neither by pre-provisioning nor by LearnUpon's group sync reading the assertion (the user's last
complete set is sent)."""

from __future__ import annotations

import pytest

from broker.demo.fake_graph import create_fake_graph
from broker.demo.idp_response import DemoUser
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from tests.e2e.test_policies import sent_groups
from tests.harness import TENANT, Harness

pytestmark = pytest.mark.slow

GRAPH_CLIENT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
SALES, STAFF = "c2a1e5f0-8b7d-4c3e-a9f6-1d2e3f4a5b6c", "d3b2f6a1-9c8e-4d4f-8a07-2e3f4a5b6c7d"
USERS = [DemoUser(f"user{n}@contoso.example", "Test", f"User{n}", f"0b6f1c84-2e3a-4a59-9d1e-{n:012d}",
                  [SALES, STAFF]) for n in range(8)]  # fmt: skip


@pytest.fixture
def graph(monkeypatch):
    monkeypatch.setenv("TEST_GRAPH_SECRET", "graph-secret")
    app = create_fake_graph(TENANT, GRAPH_CLIENT, "graph-secret", {SALES: "LU-Sales", STAFF: "LU-Staff"})
    with BackgroundServer(app) as server:
        yield server.url, app.extensions["fake_graph"]


def broker(keys, graph_url: str, lu_url: str) -> Harness:
    groups = {"on_unresolved": "drop", "budget_seconds": 1.0, "cache_ttl_seconds": 3600,
              "graph": {"tenant_id": TENANT, "client_id": GRAPH_CLIENT, "client_secret_env": "TEST_GRAPH_SECRET",
                        "login_base": graph_url, "graph_base": graph_url}}  # fmt: skip
    provisioning = {"enabled": True, "base_url": lu_url, "username_env": "TEST_LU_USER",
                    "password_env": "TEST_LU_KEY", "managed_group_patterns": ["LU-*"], "budget_seconds": 3.0}  # fmt: skip
    return Harness(keys, config_overrides={"upstreams__entra__groups": groups,
                                           "portals__academy__provisioning": provisioning,
                                           "portals__academy__attributes": {"groups": "groups"}})  # fmt: skip


def login(harness: Harness, user: DemoUser):
    pending = harness.login()
    return harness.post(harness.valid_response(pending, user=user), pending.relay_state)


def memberships(state: LearnUponState, user: DemoUser) -> set[str]:
    found = state.find_user(user.email)
    return {g["title"] for g in state.groups_of(found["id"])} if found else set()


def test_no_membership_is_removed_while_graph_is_down(keys, graph, learnupon):
    (graph_url, control), (lu_url, state) = graph, learnupon
    harness = broker(keys, graph_url, lu_url)
    for user in USERS:
        reply = login(harness, user)
        assert reply.status_code == 200 and sorted(sent_groups(reply)) == ["LU-Sales", "LU-Staff"]
    assert all(memberships(state, user) == {"LU-Sales", "LU-Staff"} for user in USERS)

    # Graph goes down, and the name cache has expired for the returning users' groups
    control.fail_next(10_000, status=503)
    for gid in (SALES, STAFF):
        harness.runtime.store.delete(f"graphname:{TENANT}:{gid}")
    removed = 0
    for user in USERS:
        # changed claims (a new department) so provisioning runs rather than finding nothing changed
        returning = DemoUser(user.email, user.first_name, user.last_name + " Jr", user.object_id, user.groups)
        reply = login(harness, returning)
        assert reply.status_code == 200
        assert sorted(sent_groups(reply)) == ["LU-Sales", "LU-Staff"]  # the last complete set, for the sync
        removed += 2 - len(memberships(state, user))
    assert removed == 0
    assert not [r for r in state.request_log() if r.method == "DELETE"]


def test_once_graph_is_back_removals_happen_again(keys, graph, learnupon):
    (graph_url, control), (lu_url, state) = graph, learnupon
    harness = broker(keys, graph_url, lu_url)
    user = USERS[0]
    assert login(harness, user).status_code == 200
    control.fail_next(10_000, status=503)
    harness.runtime.store.delete(f"graphname:{TENANT}:{STAFF}")
    only_sales = DemoUser(user.email, user.first_name, user.last_name, user.object_id, [SALES])
    reply = login(harness, only_sales)  # resolved in full from the cache: Staff was really left
    assert sorted(sent_groups(reply)) == ["LU-Sales"]
    assert memberships(state, user) == {"LU-Sales"}
