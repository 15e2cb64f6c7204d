"""The fake LearnUpon API answers like the real one: auth, wrappers, uniqueness, pages, limits, faults."""

from __future__ import annotations

import pytest
import requests

from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer


@pytest.fixture
def auth(api_key_pair):
    return api_key_pair


def test_requests_without_the_api_key_pair_get_401(lu_base_url, auth):
    assert requests.get(lu_base_url + "users/search", params={"email": "a@b.c"}, timeout=5).status_code == 401
    wrong = requests.get(lu_base_url + "groups", auth=(auth[0], "nope"), timeout=5)
    assert wrong.status_code == 401
    assert "Basic" in wrong.headers["WWW-Authenticate"]


def test_user_search_answers_404_for_nobody_and_a_user_list_otherwise(lu_base_url, lu_state, auth):
    missing = requests.get(
        lu_base_url + "users/search", params={"email": "ghost@example.com"}, auth=auth, timeout=5
    )
    assert missing.status_code == 404
    assert missing.json()["response_code"] == 404
    user = lu_state.create_user("Ada@Example.com", first_name="Ada")
    found = requests.get(
        lu_base_url + "users/search", params={"email": "ada@example.com"}, auth=auth, timeout=5
    )
    assert found.status_code == 200
    assert found.json() == {"user": [user]}


def test_emails_and_group_titles_are_unique(lu_base_url, auth):
    body = {"User": {"email": "bob@example.com", "password": "secret123"}}
    assert requests.post(lu_base_url + "users", json=body, auth=auth, timeout=5).status_code == 201
    again = requests.post(
        lu_base_url + "users",
        json={"User": {**body["User"], "email": "BOB@example.com"}},
        auth=auth,
        timeout=5,
    )
    assert again.status_code == 422
    assert "already" in again.json()["message"]
    group = {"Group": {"title": "Sales", "sso_sync": True}}
    assert requests.post(lu_base_url + "groups", json=group, auth=auth, timeout=5).status_code == 201
    assert requests.post(lu_base_url + "groups", json=group, auth=auth, timeout=5).status_code == 422


def test_bare_json_objects_are_rejected(lu_base_url, auth):
    answer = requests.post(lu_base_url + "users", json={"email": "x@example.com"}, auth=auth, timeout=5)
    assert answer.status_code == 400


def test_listings_come_in_pages_of_500_with_lu_headers(lu_base_url, lu_state, auth):
    for i in range(501):
        lu_state.create_group(f"G{i:04d}")
    first = requests.get(lu_base_url + "groups", auth=auth, timeout=5)
    assert len(first.json()["groups"]) == 500
    assert first.headers["LU-Has-Next-Page"] == "true"
    assert first.headers["LU-Current-Page"] == "1"
    assert first.headers["LU-Records-Per-Page"] == "500"
    second = requests.get(lu_base_url + "groups", params={"page": 2}, auth=auth, timeout=5)
    assert [g["title"] for g in second.json()["groups"]] == ["G0500"]
    assert second.headers["LU-Has-Next-Page"] == "false"


def test_rate_limit_headers_count_down_and_429_says_when_to_retry(lu_base_url, lu_state, auth):
    lu_state.set_rate_limit(3)
    remaining = [
        requests.get(lu_base_url + "groups", auth=auth, timeout=5).headers["X-LU-Rate-Limit-Remaining-Minute"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    over = requests.get(lu_base_url + "groups", auth=auth, timeout=5)
    assert over.status_code == 429
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert "X-LU-Rate-Limit-Remaining-Week" in over.headers


def test_faults_and_the_request_log(lu_base_url, lu_state, lu_server, auth):
    control = requests.post(
        f"{lu_server.url}/_fake/acme/faults",
        json={"fail_next": 2, "status": 503, "retry_after": 1},
        timeout=5,
    )
    assert control.status_code == 200
    statuses = [requests.get(lu_base_url + "groups", auth=auth, timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [(r.method, r.path, r.status) for r in lu_state.request_log()] == [
        ("GET", "groups", s) for s in statuses
    ]
    assert lu_state.calls() == [("GET", "groups")] * 3


def test_memberships_list_groups_by_user_and_delete_by_pair(lu_base_url, lu_state, auth):
    user = lu_state.create_user("carol@example.com")
    sales = lu_state.create_group("Sales")
    created = requests.post(
        lu_base_url + "group_memberships",
        json={"GroupMembership": {"group_id": sales["id"], "user_id": user["id"]}},
        auth=auth,
        timeout=5,
    )
    assert created.status_code == 201
    listed = requests.get(
        lu_base_url + "group_memberships", params={"user_id": user["id"]}, auth=auth, timeout=5
    )
    assert [g["title"] for g in listed.json()["group"]] == ["Sales"]
    by_group = requests.get(
        lu_base_url + "group_memberships",
        params={"group_id": sales["id"], "version_id": "1.1"},
        auth=auth,
        timeout=5,
    )
    assert by_group.json()["user"][0]["group_membership_id"] == created.json()["id"]
    gone = requests.delete(
        lu_base_url + "group_memberships/0",
        json={"GroupMembership": {"group_id": sales["id"], "user_id": user["id"]}},
        auth=auth,
        timeout=5,
    )
    assert gone.status_code == 200
    assert lu_state.groups_of(user["id"]) == []


def test_one_server_can_serve_several_portals_by_path():
    acme = LearnUponState("acme", api_username="a", api_password="a-key")
    globex = LearnUponState("globex", api_username="g", api_password="g-key")
    with BackgroundServer(create_app([acme, globex])) as server:
        answer = requests.post(
            f"{server.url}/globex/api/v1/groups",
            json={"Group": {"title": "X"}},
            auth=("g", "g-key"),
            timeout=5,
        )
        assert answer.status_code == 201
        assert (
            requests.get(f"{server.url}/globex/api/v1/groups", auth=("a", "a-key"), timeout=5).status_code
            == 401
        )
    assert [g["title"] for g in globex.groups()] == ["X"]
    assert acme.groups() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("post", "users", {"user": {"email": "x@example.com", "password": "secret123"}}, "wrapped in 'User'"),
        ("post", "users", {"User": {"email": "x@example.com", "password": "secret123", "nickname": "X"}},
         "Unknown attribute(s) for User: nickname"),
        ("post", "users", {"User": {"email": "x@example.com", "password": "secret123"}, "notify": True},
         "Unknown parameter(s): notify"),
        ("post", "groups", {"Group": {"title": "Sales", "sync_with_sso": True}}, "sync_with_sso"),
        ("post", "enrollments", {"Enrollment": {"user_id": 1, "course_id": 2, "enrolled_by": 3}}, "enrolled_by"),
        ("post", "group_memberships", {"GroupMembership": {"group_id": 1, "user_id": 2, "role": "x"}}, "role"),
        ("delete", "group_memberships/5", {"GroupMembership": {"group_id": 1, "user_id": 2}}, "Unexpected"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_the_documentation_does_not_list(lu_base_url, auth, method, path, body, reason):
    answer = requests.request(method, lu_base_url + path, json=body, auth=auth, timeout=5)
    assert answer.status_code == 400
    assert reason in answer.json()["message"]


def test_the_fake_refuses_undocumented_query_parameters(lu_base_url, auth):
    answer = requests.get(
        lu_base_url + "users/search", params={"mail": "x@example.com"}, auth=auth, timeout=5
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "Unknown parameter(s): mail"
    ok = requests.get(lu_base_url + "groups", params={"title": "Sales", "page": 1}, auth=auth, timeout=5)
    assert ok.status_code == 200
