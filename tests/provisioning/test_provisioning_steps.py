"""read_current and apply against the fake LearnUpon: refused writes are checked by reading again, never by
the wording of the error; enrolments by title are looked up once."""

from __future__ import annotations

import pytest

from broker.clients.learnupon import LearnUponError
from broker.provisioning import sync
from broker.provisioning.enrollments import Target
from broker.provisioning.plan import ApiCall, CurrentState, desired_state
from broker.provisioning.steps import apply, read_current


def revised(settings, **changes):
    return type(settings).model_validate({**settings.model_dump(), **changes})


def test_a_refused_add_counts_as_done_when_reading_again_shows_the_membership(
    lu_state, client, settings, make_claims
):
    user = lu_state.create_user("ada@example.com")
    staff = lu_state.create_group("Staff", sso_sync=True)
    lu_state.add_membership(staff["id"], user["id"])  # a concurrent login was first
    desired = desired_state(make_claims(), settings, ("Staff",))
    stale = CurrentState(user=user)  # read before the other login's write

    apply([ApiCall("add_membership", group="Staff", group_id=staff["id"])], desired, stale, client)

    assert [r.status for r in lu_state.request_log()] == [422, 200]  # refused, then re-read
    assert lu_state.request_log()[-1].path == "group_memberships"


def test_a_refused_write_that_reading_again_does_not_explain_is_an_error(
    lu_state, client, settings, make_claims
):
    user = lu_state.create_user("ada@example.com")
    desired = desired_state(make_claims(), settings, ("Staff",))
    with pytest.raises(LearnUponError) as caught:
        apply(
            [ApiCall("add_membership", group="Staff", group_id=999)], desired, CurrentState(user=user), client
        )
    assert caught.value.status == 404
    assert lu_state.calls() == [("POST", "group_memberships"), ("GET", "group_memberships")]  # checked first


def test_enrolments_by_title_are_looked_up_once_and_not_repeated(
    lu_state, make_client, store, settings, make_claims
):
    client = make_client()
    lu_state.add_course(11, "Safety First")
    lu_state.add_learning_path(21, "New Starters")
    rules = [{"groups": ["Staff"], "courses": ["safety first"], "learning_paths": ["New Starters"]}]
    settings = revised(settings, enrollments=rules)
    for email in ("ada@example.com", "bob@example.com"):
        outcome = sync.sync_user("acme", make_claims(email=email), settings, client, store, groups=("Staff",))
        assert outcome.status == "synced"
        user = lu_state.find_user(email)
        assert [e["course_id"] for e in lu_state.enrollments_of(user["id"])] == [11]
        assert [e["lp_id"] for e in lu_state.learning_path_enrollments_of(user["id"])] == [21]
    paths = [r.path for r in lu_state.request_log()]
    assert (paths.count("courses"), paths.count("learning_paths")) == (1, 1)  # cached for the second user

    # already enrolled: a fresh read (state hash forgotten) plans no write at all
    lu_state.clear_log()
    desired = desired_state(make_claims(), settings, ("Staff",))
    current = read_current(desired, client)
    assert current.catalog == {("course", "safety first"): 11, ("learning_path", "new starters"): 21}
    assert sync.plan(desired, current) == []
    assert all(method == "GET" for method, _ in lu_state.calls())


def test_a_course_title_nobody_has_fails_the_sync_with_a_clear_reason(
    lu_state, client, store, settings, make_claims
):
    settings = revised(settings, enrollments=[{"groups": ["Staff"], "courses": ["Nope"]}])
    outcome = sync.sync_user("acme", make_claims(), settings, client, store, groups=("Staff",))
    assert outcome.status == "failed"
    assert "no course titled 'Nope'" in outcome.error
    assert lu_state.users() == []  # nothing written before the plan was complete


def test_unenroll_true_removes_an_unfinished_enrolment_when_the_user_leaves_the_group(
    lu_state, client, store, settings, make_claims
):
    rules = [{"groups": ["Sales"], "courses": [5], "unenroll": True}]
    settings = revised(settings, enrollments=rules)
    sync.sync_user("acme", make_claims(), settings, client, store, groups=("Sales",))
    user = lu_state.find_user("ada@example.com")
    (enrollment,) = lu_state.enrollments_of(user["id"])

    outcome = sync.sync_user("acme", make_claims(), settings, client, store, groups=("Staff",))

    assert [c.op for c in outcome.calls].count("unenroll") == 1
    assert ("DELETE", f"enrollments/{enrollment['id']}") in lu_state.calls()
    assert lu_state.enrollments_of(user["id"]) == []
    assert Target("course", 5) in desired_state(make_claims(), settings, ("Staff",)).unenrollments
