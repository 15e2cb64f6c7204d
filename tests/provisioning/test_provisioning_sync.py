"""sync_user against the fake LearnUpon over HTTP: what it calls, in which order, and when it calls nothing."""

from __future__ import annotations

import threading
import time

import pytest

from broker.errors import LoginRefused
from broker.provisioning import sync
from broker.web.error_table import shown_for

ProvisioningError = sync.ProvisioningError

WRITES = {"POST", "PUT", "DELETE"}


def sync_user(portal, claims, settings, client, store, **kwargs):
    """`sync_user` for a portal with no group rules: the portal's groups are the claims' groups."""
    return sync.sync_user(portal, claims, settings, client, store, groups=claims.groups, **kwargs)


def dry_run(portal, claims, settings, client, store):
    return sync.dry_run(portal, claims, settings, client, store, groups=claims.groups)


def writes(lu_state) -> list[tuple[str, str]]:
    return [(m, p) for m, p in lu_state.calls() if m in WRITES]


def revised(settings, **changes):
    """Settings with changes, validated like a config file would be."""
    return type(settings).model_validate({**settings.model_dump(), **changes})


def titles_of(lu_state, email: str) -> set[str]:
    return {g["title"] for g in lu_state.groups_of(lu_state.find_user(email)["id"])}


def test_first_sync_creates_user_groups_memberships_and_enrollments_in_order(
    lu_state, client, store, settings, make_claims
):
    lu_state.create_group("Staff")
    settings = revised(settings, enrollments=[{"groups": ["staff"], "courses": [42]}])

    outcome = sync_user("acme", make_claims(), settings, client, store)

    assert outcome.status == "synced"
    assert lu_state.calls() == [
        ("GET", "users/search"),
        ("GET", "groups"),  # title=LU-Engineering: not there
        ("GET", "groups"),  # title=Staff: found
        ("POST", "users"),
        ("POST", "groups"),
        ("POST", "group_memberships"),
        ("POST", "group_memberships"),
        ("POST", "enrollments"),
    ]
    assert sorted(r.query.get("title") for r in lu_state.request_log()[1:3]) == [
        "LU-Engineering",
        "Staff",
    ]  # looked up together
    user = lu_state.find_user("ada@example.com")
    assert (user["first_name"], user["last_name"], user["user_type"]) == ("Ada", "Lovelace", "learner")
    assert "membership_type" not in user  # not sent unless configured (LearnUpon's Associations feature)
    assert titles_of(lu_state, "ada@example.com") == {"LU-Engineering", "Staff"}
    assert lu_state.find_group("LU-Engineering")["sso_sync"] is True
    assert [e["course_id"] for e in lu_state.enrollments_of(user["id"])] == [42]
    assert outcome.requests == 8
    assert outcome.user_id == user["id"]


def test_repeat_sync_makes_no_call(lu_state, client, store, settings, make_claims):
    sync_user("acme", make_claims(), settings, client, store)
    lu_state.clear_log()

    outcome = sync_user("acme", make_claims(groups=("Staff", "LU-Engineering")), settings, client, store)

    assert outcome.status == "unchanged"
    assert outcome.requests == 0
    assert lu_state.calls() == []


def test_a_changed_attribute_is_one_put(lu_state, client, store, settings, make_claims):
    sync_user("acme", make_claims(), settings, client, store)
    lu_state.clear_log()

    outcome = sync_user("acme", make_claims(last_name="King"), settings, client, store)

    user = lu_state.find_user("ada@example.com")
    assert outcome.status == "synced"
    assert writes(lu_state) == [("PUT", f"users/{user['id']}")]
    assert lu_state.request_log()[-1].body == {"User": {"last_name": "King"}}
    assert user["last_name"] == "King"


def test_a_group_gone_in_the_idp_removes_only_managed_memberships(
    lu_state, client, store, settings, make_claims
):
    user = lu_state.create_user("ada@example.com", first_name="Ada", last_name="Lovelace")
    memberships_before = {}
    for title in ("LU-Old", "Sales", "Book Club", "Staff"):
        membership = lu_state.add_membership(lu_state.create_group(title)["id"], user["id"])
        memberships_before[title.lower()] = membership["id"]

    outcome = sync_user("acme", make_claims(groups=("Staff",)), settings, client, store)

    assert outcome.status == "synced"
    # each membership is found in its group's member list (version 1.1 shows the ids) and deleted by id
    memberships = {m["group_id"]: m["id"] for m in lu_state.memberships_of(user["id"])}
    removals = [r for r in lu_state.request_log() if r.method == "DELETE" or "version_id" in r.query]
    # (the two removals run together, so their requests may interleave)
    assert sorted((r.method, r.path) for r in removals) == sorted([
        ("GET", "group_memberships"), ("DELETE", f"group_memberships/{memberships_before['lu-old']}"),
        ("GET", "group_memberships"), ("DELETE", f"group_memberships/{memberships_before['sales']}"),
    ])  # fmt: skip
    assert all(r.body is None for r in removals)  # no DELETE with a body
    assert set(memberships) == {lu_state.find_group("Book Club")["id"], lu_state.find_group("Staff")["id"]}
    assert titles_of(lu_state, "ada@example.com") == {"Book Club", "Staff"}  # unmanaged one untouched


def test_429_with_retry_after_is_waited_out(lu_state, client, store, settings, make_claims):
    lu_state.fail_next(1, 429, retry_after=1)
    started = time.monotonic()

    outcome = sync_user("acme", make_claims(), settings, client, store)

    assert outcome.status == "synced"
    assert time.monotonic() - started >= 1.0
    assert lu_state.request_log()[0].status == 429
    assert lu_state.find_user("ada@example.com") is not None


def test_5xx_is_recovered(lu_state, client, store, settings, make_claims):
    lu_state.fail_next(2, 503)

    outcome = sync_user("acme", make_claims(), settings, client, store)

    assert outcome.status == "synced"
    assert [r.status for r in lu_state.request_log()[:3]] == [503, 503, 404]  # 404: no user yet
    assert titles_of(lu_state, "ada@example.com") == {"LU-Engineering", "Staff"}


def test_timeout_under_continue_returns_a_failed_outcome_within_the_budget(
    lu_state, make_client, store, settings, make_claims
):
    client = make_client(timeout=(0.5, 0.25))
    settings = revised(settings, budget_seconds=0.7)
    lu_state.delay(1.0)
    started = time.monotonic()

    outcome = sync_user("acme", make_claims(), settings, client, store)

    assert outcome.status == "failed" and not outcome.ok
    assert time.monotonic() - started < 1.0
    assert "timeout" in outcome.error or "budget" in outcome.error
    lu_state.clear_faults()
    lu_state.wait_idle()
    assert lu_state.users() == []
    # Nothing was cached: the next login tries again.
    assert sync_user("acme", make_claims(), settings, make_client(), store).status == "synced"


def test_timeout_under_block_refuses_the_login(
    lu_state, make_client, store, settings, make_claims, api_key_pair
):
    client = make_client(timeout=(0.5, 0.25))
    settings = revised(settings, budget_seconds=0.7, on_failure="block")
    lu_state.delay(1.0)

    with pytest.raises(ProvisioningError) as caught:
        sync_user("acme", make_claims(), settings, client, store)

    assert isinstance(caught.value, LoginRefused)
    assert shown_for(type(caught.value)).status == 503
    assert caught.value.outcome.status == "failed"
    for secret in api_key_pair:
        assert secret not in f"{caught.value} {caught.value.reason} {caught.value.outcome}"


def test_twenty_simultaneous_first_logins_create_one_user(
    lu_state, make_client, store, settings, make_claims
):
    client = make_client()
    start = threading.Barrier(20)
    outcomes = []

    def login():
        start.wait()
        outcomes.append(sync_user("acme", make_claims(), settings, client, store))

    threads = [threading.Thread(target=login) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert len(outcomes) == 20 and all(o.ok for o in outcomes)
    assert sorted(o.status for o in outcomes) == ["synced"] + ["unchanged"] * 19
    assert len(lu_state.users()) == 1
    assert lu_state.calls().count(("POST", "users")) == 1
    assert titles_of(lu_state, "ada@example.com") == {"LU-Engineering", "Staff"}


def test_already_exists_on_create_counts_as_success(lu_state, client, store, settings, make_claims):
    """The search missed the user (another login, or search lag): create says 422 and the sync re-reads."""
    lu_state.create_user("ada@example.com", first_name="Ada", last_name="Lovelace")
    lu_state.hide_from_search(1)

    outcome = sync_user("acme", make_claims(), settings, client, store)

    assert outcome.status == "synced"
    assert [r.status for r in lu_state.request_log() if r.method == "POST" and r.path == "users"] == [422]
    assert len(lu_state.users()) == 1
    assert titles_of(lu_state, "ada@example.com") == {"LU-Engineering", "Staff"}


def test_a_group_created_meanwhile_by_another_login_is_used(lu_state, client, store, settings, make_claims):
    outcome_first = sync_user("acme", make_claims(email="bob@example.com"), settings, client, store)
    lu_state.clear_log()

    outcome = sync_user("acme", make_claims(), settings, client, store)

    assert outcome_first.ok and outcome.ok
    assert ("POST", "groups") not in lu_state.calls()
    assert len(lu_state.groups()) == 2


def test_user_type_rules_set_the_type_first_match_wins(lu_state, client, store, settings, make_claims):
    settings = revised(
        settings,
        user_type_rules=[
            {"group": "Staff", "user_type": "instructor"},
            {"group": "LU-Engineering", "user_type": "admin"},
        ],
    )
    sync_user("acme", make_claims(), settings, client, store)
    assert lu_state.find_user("ada@example.com")["user_type"] == "instructor"


def test_dry_run_shows_the_plan_and_changes_nothing(lu_state, client, store, settings, make_claims):
    lu_state.create_group("Staff")

    plan = dry_run("acme", make_claims(), settings, client, store)

    assert [c.op for c in plan.calls] == ["create_user", "create_group", "add_membership", "add_membership"]
    assert plan.calls[0].describe().startswith("POST users email='ada@example.com'")
    assert (
        plan.calls[3].describe()
        == f"POST group_memberships group='Staff' (id {lu_state.find_group('Staff')['id']})"
    )
    assert not plan.cached
    assert writes(lu_state) == []
    assert lu_state.users() == []
    sync_user("acme", make_claims(), settings, client, store)
    again = dry_run("acme", make_claims(), settings, client, store)
    assert again.cached and again.calls == ()


def test_disabled_settings_make_no_call(lu_state, client, store, settings, make_claims):
    outcome = sync_user("acme", make_claims(), revised(settings, enabled=False), client, store)
    assert outcome.status == "disabled"
    assert lu_state.calls() == []
