"""The directory clients against their fakes on loopback: paging, states, routing groups, throttling, refusal."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from broker.clients.directory import DirectoryUnavailable
from broker.clients.entra_directory import EntraDirectory
from broker.clients.graph import GraphClient
from broker.clients.http import RetryPolicy
from broker.clients.okta_directory import OktaDirectory
from broker.demo.fake_graph import FakeGraphControl, create_fake_graph
from broker.demo.fake_okta import FakeOktaControl, create_fake_okta, okta_user
from broker.demo.webserver import BackgroundServer

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "review-test-secret"
SALES = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER = "aaaaaaaa-0000-4000-8000-000000000002"
USERS = {
    str(uuid.UUID(int=n + 1)): {
        "mail": f"user{n}@contoso.example",
        "userPrincipalName": f"user{n}@contoso.example",
        "accountEnabled": n % 10 != 0,  # every tenth disabled
        "signInActivity": {"lastSignInDateTime": "2026-11-01T10:00:00Z"} if n % 2 else None,
    }
    for n in range(1200)
}
MEMBERSHIPS = {uid: [SALES] for uid in list(USERS)[:30]} | {uid: [OTHER] for uid in list(USERS)[30:40]}
DELETED = {
    "bbbbbbbb-0000-4000-8000-000000000001": {
        "mail": "gone@contoso.example",
        "deletedDateTime": "2026-11-20T00:00:00Z",
    }
}


@pytest.fixture(scope="module")
def graph() -> Iterator[tuple[str, FakeGraphControl]]:
    control = FakeGraphControl()
    app = create_fake_graph(TENANT, CLIENT_ID, SECRET, {SALES: "Sales Team", OTHER: "Other"}, MEMBERSHIPS,
                            users=USERS, deleted_users=DELETED, control=control)  # fmt: skip
    with BackgroundServer(app) as server:
        yield server.url, control


@pytest.fixture
def entra(graph) -> Iterator[tuple[EntraDirectory, FakeGraphControl]]:
    url, control = graph
    control.reset()
    client = GraphClient(tenant_id=TENANT, client_id=CLIENT_ID, client_secret=SECRET, login_base=url,
                         graph_base=url, backoff=0.01)  # fmt: skip
    yield EntraDirectory(client, budget=20), control
    client.close()
    control.reset()


def test_entra_reads_every_user_in_pages_with_states_and_sign_ins(entra):
    directory, control = entra
    snap = directory.snapshot([])
    by_email = snap.by_email()
    assert len([u for u in snap.users if u.state != "deleted"]) == 1200
    assert by_email["user10@contoso.example"].state == "disabled"
    assert by_email["user10@contoso.example"].detail == "accountEnabled false"
    assert by_email["user11@contoso.example"].last_sign_in is not None
    assert by_email["gone@contoso.example"].state == "deleted"
    assert snap.sign_ins_known
    # 1200 users at 500 a page with signInActivity: 3 pages, 1 deleted-users page, 1 token
    assert control.counts["users"] == 3 and control.counts["deletedUsers"] == 1
    assert snap.requests == control.total == 5


def test_entra_routing_groups_by_name_pattern_and_their_members(entra):
    directory, _ = entra
    snap = directory.snapshot(["sales*"])
    assert snap.routing_groups == {SALES: "Sales Team"}
    assert snap.members == {uid.lower() for uid in list(USERS)[:30]}


def test_entra_without_sign_in_permission_reads_users_anyway_and_says_so(entra):
    directory, control = entra
    control.sign_in_activity_refused = "premium"
    snap = directory.snapshot([])
    assert not snap.sign_ins_known
    assert any("signInActivity refused" in note for note in snap.notes)
    assert len(snap.users) == 1201
    assert control.counts["users"] == 3  # one refused, then 2 pages of 999


def test_entra_retries_a_throttled_page_and_honours_retry_after(entra):
    directory, control = entra
    control.fail_next(2, 429, retry_after=0.05, endpoint="users")
    assert len(directory.snapshot([]).users) == 1201


def test_entra_unreachable_raises_directory_unavailable(entra):
    directory, control = entra
    control.fail_next(50, 503, endpoint="users")
    with pytest.raises(DirectoryUnavailable, match="entra: users: HTTP 503"):
        directory.snapshot([])


OKTA_TOKEN = "00okta-test-token"
OKTA_USERS = [okta_user(f"00u{n:04d}", f"p{n}@fabrikam.example", "P", str(n)) for n in range(450)]
OKTA_USERS += [okta_user("00ususp", "susp@fabrikam.example", "S", "S", "SUSPENDED"),
               okta_user("00udepr", "gone@fabrikam.example", "D", "D", "DEPROVISIONED")]  # fmt: skip
OKTA_GROUPS = {"00gsales": ("Sales Team", ["00u0001", "00u0002"]), "00gall": ("Everyone", ["00u0003"])}


@pytest.fixture(scope="module")
def okta_server() -> Iterator[tuple[str, FakeOktaControl]]:
    control = FakeOktaControl()
    with BackgroundServer(create_fake_okta(OKTA_TOKEN, OKTA_USERS, OKTA_GROUPS, control=control)) as server:
        yield server.url, control


@pytest.fixture
def okta(okta_server) -> Iterator[tuple[str, FakeOktaControl]]:
    url, control = okta_server
    control.reset()
    yield url, control
    control.reset()


def fast(url: str, token: str = OKTA_TOKEN) -> OktaDirectory:
    return OktaDirectory(
        url, token, budget=10, retry=RetryPolicy(max_retries=3, backoff=0.01, max_retry_after=3)
    )


def test_okta_pages_through_users_and_finds_suspended_and_deprovisioned(okta):
    url, control = okta
    snap = fast(url).snapshot(["sales*"])
    by_email = snap.by_email()
    assert len(snap.users) == 452
    assert by_email["susp@fabrikam.example"].state == "suspended"
    assert by_email["gone@fabrikam.example"].state == "deprovisioned"  # only the filtered listing shows it
    assert by_email["p7@fabrikam.example"].state == "active"
    assert snap.routing_groups == {"00gsales": "Sales Team"}
    assert snap.members == {"00u0001", "00u0002"}
    # 451 listed users at 200 a page: 3 pages, 1 deprovisioned page, 1 groups page, 1 members page
    assert control.counts["users"] == 4 and snap.requests == 6


def test_okta_waits_for_the_rate_limit_reset_then_goes_on(okta):
    url, control = okta
    control.fail_next(1, 429, endpoint="users", reset_in=1)
    assert len(fast(url).snapshot([]).users) == 452


def test_okta_bad_token_and_5xx_are_directory_unavailable(okta):
    url, control = okta
    with pytest.raises(DirectoryUnavailable, match="HTTP 401 E0000011"):
        fast(url, "wrong").snapshot([])
    control.fail_next(10, 503)
    with pytest.raises(DirectoryUnavailable, match="HTTP 503; gave up"):
        fast(url).snapshot([])
