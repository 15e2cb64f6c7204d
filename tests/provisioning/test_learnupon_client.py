"""LearnUponClient against the fake API over loopback HTTP: shapes, retries, limits, budget, secrecy."""

from __future__ import annotations

import base64
import logging
import time

import pytest
from flask import Flask, jsonify, request

from broker.clients.learnupon import (
    LearnUponAuthError,
    LearnUponClient,
    LearnUponConflict,
    LearnUponError,
    LearnUponNotFound,
    LearnUponRejected,
    LearnUponUnavailable,
)
from broker.demo.webserver import BackgroundServer


def test_find_user_is_none_on_404_and_the_user_after_create(client, lu_state):
    assert client.find_user_by_email("ada@example.com") is None
    user_id = client.create_user({"email": "ada@example.com", "first_name": "Ada"})
    found = client.find_user_by_email("ADA@example.com")
    assert found["id"] == user_id
    assert found["first_name"] == "Ada"
    assert client.counters["ok"] == 2
    assert client.counters["http_404"] == 1


def test_create_user_sets_a_strong_random_password_when_none_is_given(client, lu_state):
    client.create_user({"email": "a@example.com"})
    client.create_user({"email": "b@example.com"})
    sent = [r.body["User"]["password"] for r in lu_state.request_log() if r.method == "POST"]
    assert len(set(sent)) == 2
    assert all(len(p) >= 20 and not p.isalnum() for p in sent)


def test_a_refused_write_is_a_rejection_whatever_its_wording(client):
    client.create_user({"email": "ada@example.com"})
    with pytest.raises(LearnUponRejected) as caught:  # the English of the message decides nothing
        client.create_user({"email": "ada@example.com"})
    assert caught.value.status == 422
    assert not isinstance(caught.value, LearnUponConflict)


def test_an_invented_field_or_wrapper_fails_against_the_strict_fake(client, lu_state):
    with pytest.raises(LearnUponRejected, match="Unknown attribute"):
        client.create_user({"email": "ada@example.com", "favourite_colour": "blue"})
    with pytest.raises(LearnUponRejected, match="Unknown attribute"):
        client.update_user(1, {"nickname": "Ada"})
    assert lu_state.users() == []


def test_groups_are_read_over_every_page(client, lu_state):
    for i in range(1201):
        lu_state.create_group(f"Group {i:04d}")
    groups = client.list_groups()
    assert len(groups) == 1201
    assert len({g["id"] for g in groups}) == 1201
    assert [r.query.get("page") for r in lu_state.request_log()] == ["1", "2", "3"]
    assert [g["title"] for g in client.list_groups(title="group 0700")] == ["Group 0700"]


def test_group_membership_round_trip(client, lu_state):
    user_id = client.create_user({"email": "ada@example.com"})
    group_id = client.create_group("LU-Engineering")
    assert lu_state.get_group(group_id)["sso_sync"] is True
    client.add_membership(group_id, user_id)
    assert [g["title"] for g in client.list_memberships(user_id)] == ["LU-Engineering"]
    with pytest.raises(LearnUponRejected):
        client.add_membership(group_id, user_id)
    membership_id = client.find_membership_id(group_id, user_id)
    assert membership_id == lu_state.memberships_of(user_id)[0]["id"]
    client.remove_membership(membership_id)
    assert client.list_memberships(user_id) == []
    assert client.find_membership_id(group_id, user_id) is None
    assert ("DELETE", f"group_memberships/{membership_id}") in lu_state.calls()


def test_enroll_by_user_id_list_and_unenroll(client, lu_state):
    user_id = client.create_user({"email": "ada@example.com"})
    client.enroll(user_id, 42)
    assert lu_state.request_log()[-1].body == {"Enrollment": {"user_id": user_id, "course_id": 42}}
    (enrollment,) = client.list_enrollments(user_id)
    assert enrollment["course_id"] == 42
    with pytest.raises(LearnUponRejected):
        client.enroll(user_id, 42)
    client.unenroll(enrollment["id"])
    assert client.list_enrollments(user_id) == []


def test_learning_path_enrolment_and_titles_looked_up_once(client, lu_state):
    lu_state.add_course(11, "Safety First")
    lu_state.add_course(12, "Safety First: Refresher")
    lu_state.add_learning_path(21, "New Starters")
    user_id = client.create_user({"email": "ada@example.com"})
    assert client.find_course_id("safety first") == 11  # a pattern search; only the exact title counts
    assert client.find_course_id("Safety First") == 11
    assert client.find_learning_path_id("New Starters") == 21
    assert [r.path for r in lu_state.request_log()].count("courses") == 1  # cached after the first look-up
    with pytest.raises(LearnUponNotFound, match="no course titled 'Unknown'"):
        client.find_course_id("Unknown")
    client.enroll_learning_path(user_id, 21)
    assert lu_state.request_log()[-1].body == {"Enrollment": {"user_id": user_id, "lp_id": 21}}
    assert [e["lp_id"] for e in client.list_learning_path_enrollments(user_id)] == [21]


def test_without_rate_limit_headers_429_and_retry_after_are_enough(client, lu_state):
    lu_state.rate_limit_headers = False  # the headers are documented but not relied on
    lu_state.fail_next(1, 429, retry_after=1)
    started = time.monotonic()
    assert client.list_groups() == []
    assert time.monotonic() - started >= 1.0  # the Retry-After was waited out
    assert "X-LU-Rate-Limit-Remaining-Minute" not in lu_state.request_log()[-1].query
    assert client.rate_limit_remaining_minute is None
    assert client.counters["rate_limited"] == 1
    assert "slowed" not in client.counters


def test_429_waits_for_retry_after_then_succeeds(client, lu_state):
    lu_state.fail_next(1, 429, retry_after=1)
    started = time.monotonic()
    assert client.list_groups() == []
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in lu_state.request_log()] == [429, 200]
    assert client.counters["rate_limited"] == 1
    assert client.counters["retried"] == 1


def test_5xx_is_retried_with_backoff(client, lu_state):
    lu_state.fail_next(2, 503)
    lu_state.fail_next(1, 500)
    assert client.list_groups() == []
    assert [r.status for r in lu_state.request_log()] == [503, 503, 500, 200]
    assert client.counters["server_error"] == 3


def test_5xx_past_the_retries_is_unavailable(make_client, lu_state):
    client = make_client(max_retries=2)
    lu_state.fail_next(5, 502)
    with pytest.raises(LearnUponUnavailable) as caught:
        client.list_groups()
    assert caught.value.status == 502
    assert len(lu_state.request_log()) == 3


def test_a_retry_after_longer_than_allowed_gives_up_at_once(make_client, lu_state):
    client = make_client(max_retry_after=2)
    lu_state.fail_next(1, 429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(LearnUponUnavailable, match="Retry-After"):
        client.list_groups()
    assert time.monotonic() - started < 1


def test_low_remaining_rate_limit_slows_calls_down(make_client, lu_state):
    pauses: list[float] = []
    client = make_client(low_water=3, slowdown=0.05, sleep=lambda s: (pauses.append(s), time.sleep(s)))
    lu_state.set_rate_limit(5)
    for _ in range(5):
        client.list_groups()
    # Remaining after each call: 4, 3, 2, 1, 0 - the calls after "3" and below are slowed.
    assert client.counters["slowed"] == 3
    assert pauses == sorted(pauses)
    assert client.rate_limit_remaining_minute == 0
    with pytest.raises(LearnUponUnavailable):  # the limit's Retry-After is longer than we wait
        client.list_groups()


def test_a_read_timeout_within_a_budget_is_unavailable_fast(make_client, lu_state):
    client = make_client(timeout=(0.5, 0.2))
    lu_state.delay(1.0)
    started = time.monotonic()
    with client.budget(0.6), pytest.raises(LearnUponUnavailable) as caught:
        client.list_groups()
    assert time.monotonic() - started < 0.9
    assert client.counters["timeout"] >= 1
    assert "timeout" in str(caught.value)


def test_a_spent_budget_refuses_to_call(client, lu_state):
    with client.budget(0.0), pytest.raises(LearnUponUnavailable, match="budget"):
        client.find_user_by_email("ada@example.com")
    assert lu_state.request_log() == []


def test_wrong_credentials_are_an_auth_error_without_the_credentials(make_client, api_key_pair):
    username, api_key = api_key_pair
    client = make_client(password="wrong-" + api_key)
    with pytest.raises(LearnUponAuthError) as caught:
        client.find_user_by_email("ada@example.com")
    assert caught.value.status == 401
    text = f"{caught.value} {caught.value!r} {caught.value.api_message}"
    assert api_key not in text and username not in text


def test_credentials_and_generated_passwords_never_appear_in_errors_or_logs(caplog, api_key_pair):
    username, api_key = api_key_pair
    """An API that echoes the request (headers and body) into its error message."""
    echo = Flask(__name__)

    @echo.post("/api/v1/users")
    def reflect():
        text = f"{request.headers.get('Authorization')} {request.get_data(as_text=True)}"
        return jsonify({"message": f"invalid: {text}"}), 422

    with BackgroundServer(echo) as server:
        client = LearnUponClient(server.url + "/api/v1/", username, api_key)
        caplog.set_level(logging.DEBUG)
        with pytest.raises(LearnUponError) as caught:
            client.create_user({"email": "ada@example.com", "note": api_key})
        sent_password = caught.value.api_message.split('"password": "')[1].split('"')[0]
    text = f"{caught.value} {caught.value!r} {caught.value.api_message} {caplog.text}"
    assert api_key not in text
    assert username not in text
    assert base64.b64encode(f"{username}:{api_key}".encode()).decode() not in text
    assert "Basic ***" in text
    assert sent_password == "***"


def test_base_url_with_credentials_is_refused(api_key_pair):
    username, api_key = api_key_pair
    with pytest.raises(ValueError) as caught:
        LearnUponClient(f"https://{username}:{api_key}@acme.learnupon.com/api/v1/", username, api_key)
    assert api_key not in str(caught.value)
    assert api_key not in repr(LearnUponClient("https://acme.learnupon.com/api/v1", username, api_key))
