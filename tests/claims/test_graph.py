"""GraphClient against the fake Graph on loopback: token cache, chunking, $batch, paging, faults, budget."""

from __future__ import annotations

import logging
import socket
import time

import pytest
import requests
from flask import Flask, request

from broker.clients.graph import GraphAuthError, GraphError, GraphUnavailable
from broker.demo.webserver import BackgroundServer

from .conftest import BIG_USER, GROUP_IDS, GROUPS, SECRET, SMALL_USER, UNKNOWN_GROUP


def test_token_is_fetched_once_for_several_calls(make_client, fake):
    client = make_client()
    assert client.names_by_ids(GROUP_IDS[:2]) == {g: GROUPS[g] for g in GROUP_IDS[:2]}
    client.names_by_ids(GROUP_IDS[2:4])
    client.user_groups(SMALL_USER)
    assert fake.counts["token"] == 1
    assert fake.counts["getByIds"] == 2
    assert fake.counts["transitiveMemberOf"] == 1


def test_revoked_token_is_renewed_once(make_client, fake):
    client = make_client()
    client.names_by_ids(GROUP_IDS[:1])
    fake.revoke_tokens()
    assert client.names_by_ids(GROUP_IDS[1:2]) == {GROUP_IDS[1]: GROUPS[GROUP_IDS[1]]}
    assert fake.counts["token"] == 2
    assert fake.counts["getByIds"] == 3  # ok, 401, ok


def test_get_by_ids_sends_one_request_per_1000_ids(make_client, fake):
    names = make_client().names_by_ids(GROUP_IDS[:1500])
    assert fake.counts["getByIds"] == 2
    assert names == {g: GROUPS[g] for g in GROUP_IDS[:1500]}


def test_unknown_ids_are_absent_and_case_is_normalised(make_client, fake):
    names = make_client().names_by_ids([GROUP_IDS[0].upper(), UNKNOWN_GROUP, GROUP_IDS[0]])
    assert names == {GROUP_IDS[0]: GROUPS[GROUP_IDS[0]]}
    assert fake.counts["getByIds"] == 1


def test_non_guid_ids_are_refused_before_any_request(make_client, fake):
    with pytest.raises(ValueError, match="not a group object ID"):
        make_client().names_by_ids(["../users"])
    assert fake.total == 0


def test_batch_mode_sends_20_group_requests_per_batch(make_client, fake):
    ids = GROUP_IDS[:44] + [UNKNOWN_GROUP]
    names = make_client(mode="batch").names_by_ids(ids)
    assert fake.counts["batch"] == 3
    assert fake.counts["batch.group"] == 45
    assert fake.counts["getByIds"] == 0
    assert names == {g: GROUPS[g] for g in GROUP_IDS[:44]}  # the 404 item is simply absent


def test_batch_item_throttled_is_retried_after_retry_after(make_client, fake):
    fake.fail_next(1, 429, retry_after=1, endpoint="batch.group")
    started = time.monotonic()
    names = make_client(mode="batch").names_by_ids(GROUP_IDS[:5])
    elapsed = time.monotonic() - started
    assert names == {g: GROUPS[g] for g in GROUP_IDS[:5]}
    assert elapsed >= 1.0
    assert fake.counts["batch"] == 2
    assert fake.counts["batch.group"] == 6  # only the throttled item is asked again


def test_overage_follows_every_next_link(make_client, fake):
    fake.max_page_size = 100
    groups = make_client().user_groups(BIG_USER)
    assert fake.counts["transitiveMemberOf"] == 3
    assert groups == {g: GROUPS[g] for g in GROUP_IDS[:250]}


def test_unknown_user_is_a_graph_error(make_client, fake):
    with pytest.raises(GraphError, match="Request_ResourceNotFound"):
        make_client().user_groups("33333333-3333-3333-3333-333333333333")


def test_throttling_honours_retry_after(make_client, fake):
    client = make_client()
    fake.fail_next(1, 429, retry_after=1, endpoint="getByIds")
    started = time.monotonic()
    assert client.names_by_ids(GROUP_IDS[:1]) == {GROUP_IDS[0]: GROUPS[GROUP_IDS[0]]}
    assert time.monotonic() - started >= 1.0
    assert fake.counts["getByIds"] == 2


def test_retry_after_beyond_the_budget_gives_up_at_once(make_client, fake):
    fake.fail_next(1, 429, retry_after=5, endpoint="getByIds")
    started = time.monotonic()
    with pytest.raises(GraphUnavailable, match="budget"):
        make_client().names_by_ids(GROUP_IDS[:1], budget=2.0)
    assert time.monotonic() - started < 0.5  # no pointless wait for a retry that cannot happen
    assert fake.counts["getByIds"] == 1


def test_server_errors_are_retried_with_backoff(make_client, fake):
    fake.fail_next(2, 500, endpoint="getByIds")
    assert make_client().names_by_ids(GROUP_IDS[:1]) == {GROUP_IDS[0]: GROUPS[GROUP_IDS[0]]}
    assert fake.counts["getByIds"] == 3


def test_server_errors_give_up_after_max_retries(make_client, fake):
    fake.fail_next(10, 503, endpoint="getByIds")
    with pytest.raises(GraphUnavailable, match="HTTP 503; gave up after 3 attempts"):
        make_client(max_retries=2).names_by_ids(GROUP_IDS[:1])
    assert fake.counts["getByIds"] == 3


def test_token_endpoint_throttling_is_retried(make_client, fake):
    fake.fail_next(1, 503, endpoint="token")
    assert make_client().names_by_ids(GROUP_IDS[:1]) == {GROUP_IDS[0]: GROUPS[GROUP_IDS[0]]}
    assert fake.counts["token"] == 2


def test_slow_graph_gives_up_within_the_budget(make_client, fake):
    client = make_client()
    client.names_by_ids(GROUP_IDS[:1])  # token cached: the budget below is all Graph's
    fake.delay_next(5, 3.0, endpoint="getByIds")
    started = time.monotonic()
    with pytest.raises(GraphUnavailable, match="0.5 s budget"):
        client.names_by_ids(GROUP_IDS[1:2], budget=0.5)
    assert 0.45 <= time.monotonic() - started < 0.8


def test_slow_token_endpoint_counts_against_the_budget(make_client, fake):
    fake.delay_next(1, 3.0, endpoint="token")
    started = time.monotonic()
    with pytest.raises(GraphUnavailable):
        make_client().names_by_ids(GROUP_IDS[:1], budget=0.5)
    assert time.monotonic() - started < 0.8
    assert fake.counts["getByIds"] == 0


def test_missing_permission_is_an_auth_error_naming_it(make_client, fake):
    fake.deny("getByIds")
    with pytest.raises(GraphAuthError, match="Directory.Read.All"):
        make_client().names_by_ids(GROUP_IDS[:1])
    fake.deny("batch")
    with pytest.raises(GraphAuthError, match="GroupMember.Read.All"):
        make_client(mode="batch").names_by_ids(GROUP_IDS[:1])


def test_wrong_secret_is_an_auth_error_without_retries(make_client, fake, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(GraphAuthError, match="invalid_client: AADSTS7000215") as caught:
        make_client(client_secret="wrong-" + SECRET).names_by_ids(GROUP_IDS[:1])
    assert fake.counts["token"] == 1
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "fault",
    [
        lambda f: f.fail_next(10, 503),
        lambda f: f.fail_next(1, 429, retry_after=60),
        lambda f: f.deny("getByIds"),
        lambda f: f.delay_next(3, 2.0, endpoint="getByIds"),
    ],
    ids=["5xx", "throttled", "denied", "slow"],
)
def test_secret_and_token_never_appear_in_errors_or_logs(make_client, fake, caplog, fault):
    caplog.set_level(logging.DEBUG)
    client = make_client(max_retries=1)
    client.names_by_ids(GROUP_IDS[:1])
    token = next(iter(fake.tokens))
    fault(fake)
    with pytest.raises(GraphError) as caught:
        client.names_by_ids(GROUP_IDS[1:2], budget=0.5)
    for secret in (SECRET, token):
        assert secret not in str(caught.value)
        assert secret not in repr(client)
        assert secret not in caplog.text


def test_next_link_to_another_host_is_not_followed(make_client, graph_url, fake):
    # a Graph look-alike whose nextLink points elsewhere: following it would hand over our token
    rogue = Flask(__name__)
    seen: list[str] = []

    @rogue.get("/v1.0/users/<user>/transitiveMemberOf/microsoft.graph.group")
    def page(user: str):
        seen.append(request.headers.get("Authorization", ""))
        return {"value": [], "@odata.nextLink": "http://127.0.0.2:9/v1.0/steal"}

    with BackgroundServer(rogue) as server:
        with pytest.raises(GraphError, match="nextLink"):
            make_client(login_base=graph_url, graph_base=server.url).user_groups(BIG_USER)
    assert len(seen) == 1


def test_unreachable_graph_is_unavailable(make_client):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there any more
    started = time.monotonic()
    with pytest.raises(GraphUnavailable, match="request failed"):
        make_client(login_base=url, graph_base=url).names_by_ids(GROUP_IDS[:1], budget=1.0)
    assert time.monotonic() - started < 1.2


def test_fake_refuses_what_graph_refuses(graph_url, make_client, fake):
    client = make_client()
    client.names_by_ids(GROUP_IDS[:1])
    token = next(iter(fake.tokens))
    auth = {"Authorization": f"Bearer {token}"}
    too_many = requests.post(
        f"{graph_url}/v1.0/directoryObjects/getByIds", json={"ids": GROUP_IDS[:1001]}, headers=auth, timeout=5
    )
    assert too_many.status_code == 400
    assert too_many.json()["error"]["code"] == "Request_BadRequest"
    batch = {
        "requests": [{"id": str(n), "method": "GET", "url": f"/groups/{GROUP_IDS[n]}"} for n in range(21)]
    }
    assert requests.post(f"{graph_url}/v1.0/$batch", json=batch, headers=auth, timeout=5).status_code == 400
    missing = requests.get(f"{graph_url}/v1.0/groups/{UNKNOWN_GROUP}", headers=auth, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    selected = requests.get(
        f"{graph_url}/v1.0/groups/{GROUP_IDS[0]}",
        params={"$select": "id,displayName"},
        headers=auth,
        timeout=5,
    ).json()
    assert {k for k in selected if not k.startswith("@")} == {"id", "displayName"}
    anonymous = requests.get(f"{graph_url}/v1.0/groups/{GROUP_IDS[0]}", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_get_all_reads_every_page_of_a_listing(make_client, fake):
    fake.max_page_size = 500
    groups = make_client().get_all(
        "/v1.0/groups?$select=id,displayName&$top=999", what="groups", permission="Group.Read.All"
    )
    assert fake.counts["groups"] == 4
    assert {g["id"]: g["displayName"] for g in groups} == GROUPS


def test_get_json_finds_a_group_by_name_and_names_the_permission_it_lacks(make_client, fake):
    client = make_client()
    found = client.get_json(
        "/v1.0/groups?$filter=displayName%20eq%20'Group%200007'", what="groups", permission="Group.Read.All"
    )
    assert [g["id"] for g in found["value"]] == [GROUP_IDS[7]]
    fake.deny("groupMembers")
    with pytest.raises(GraphAuthError, match="GroupMember.Read.All"):
        client.get_all(
            f"/v1.0/groups/{GROUP_IDS[0]}/transitiveMembers/microsoft.graph.user",
            what="transitiveMembers",
            permission="GroupMember.Read.All",
        )


def test_get_json_sends_the_token_only_to_graph_base(make_client, fake):
    with pytest.raises(ValueError, match="graph_base"):
        make_client().get_json("http://127.0.0.2:9/v1.0/steal", what="steal", permission="none")
    assert fake.total == 0
