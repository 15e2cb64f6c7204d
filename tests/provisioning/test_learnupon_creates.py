"""A POST that creates a user or a group is not sent again blindly once it may have reached LearnUpon (its
answer was lost, it timed out, or LearnUpon answered 5xx): the client looks first, then creates."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from broker.clients.learnupon import LearnUponUnavailable
from tests.faults.processes import AnswerSwallowingProxy


@pytest.fixture
def proxy(lu_server):
    proxy = AnswerSwallowingProxy(urlsplit(lu_server.url).port)
    yield proxy
    proxy.close()


def posts(lu_state, path: str) -> int:
    return sum(1 for r in lu_state.request_log() if r.method == "POST" and r.path == path)


def test_a_user_created_but_whose_answer_was_lost_is_found_not_created_again(lu_state, proxy, make_client):
    client = make_client(base_url=f"http://127.0.0.1:{proxy.port}/api/v1/")
    proxy.arm(b"POST /api/v1/users ")  # LearnUpon creates the user; the answer never arrives
    user_id = client.create_user({"email": "ada@example.com", "first_name": "Ada", "last_name": "L"})
    assert proxy.swallowed == 1
    assert user_id == lu_state.find_user("ada@example.com")["id"]
    assert posts(lu_state, "users") == 1  # the first POST did create the user: it was found, not re-sent
    assert [r.path for r in lu_state.request_log()] == ["users", "users/search"]
    assert len(lu_state.users()) == 1


def test_a_user_created_whose_answer_was_cut_off_midway_is_found_not_created_again(
    lu_state, proxy, make_client
):
    client = make_client(base_url=f"http://127.0.0.1:{proxy.port}/api/v1/")
    # the status line and headers arrive, the body stops: LearnUpon had the request and made the user
    proxy.arm(b"POST /api/v1/users ", let_through=5)
    user_id = client.create_user({"email": "ada@example.com", "first_name": "Ada", "last_name": "L"})
    assert proxy.swallowed == 1
    assert user_id == lu_state.find_user("ada@example.com")["id"]
    assert posts(lu_state, "users") == 1 and len(lu_state.users()) == 1


def test_a_group_created_but_whose_answer_was_lost_is_found_not_created_again(lu_state, proxy, make_client):
    client = make_client(base_url=f"http://127.0.0.1:{proxy.port}/api/v1/")
    proxy.arm(b"POST /api/v1/groups ")
    group_id = client.create_group("LU-Engineering")
    assert proxy.swallowed == 1
    assert posts(lu_state, "groups") == 1
    assert [g["id"] for g in client.list_groups(title="LU-Engineering")] == [group_id]


def test_a_user_post_answered_5xx_is_looked_up_before_one_more_try(lu_state, client):
    lu_state.fail_next(1, status=500)
    user_id = client.create_user({"email": "bob@example.com", "first_name": "Bob", "last_name": "B"})
    assert user_id == lu_state.find_user("bob@example.com")["id"]
    methods = [(r.method, r.path) for r in lu_state.request_log()][-3:]
    assert methods == [("POST", "users"), ("GET", "users/search"), ("POST", "users")]


def test_a_connection_refused_before_sending_is_retried_as_usual(make_client):
    client = make_client(base_url="http://127.0.0.1:1/api/v1/", max_retries=2)
    with pytest.raises(LearnUponUnavailable, match="connection error"):
        client.create_user({"email": "carol@example.com"})
    assert client.counters["connection_error"] == 3  # the first try and two retries: it never arrived
