"""The pure parts: settings validation, desired_state and plan, without HTTP."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.errors import ConfigError
from broker.model import Claims
from broker.provisioning.enrollments import CurrentEnrollment, Target
from broker.provisioning.plan import (
    CurrentGroup,
    CurrentState,
    DesiredState,
    ProvisioningSettings,
    desired_state,
    plan,
)
from broker.provisioning.sync import build_client

BASE = {"enabled": True, "username_env": "LU_USER", "password_env": "LU_KEY"}


def settings(**changes) -> ProvisioningSettings:
    return ProvisioningSettings.model_validate({**BASE, **changes})


def claims(**changes) -> Claims:
    values = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "groups": ("Staff",)}
    return Claims(**{**values, **changes})


def desire(user: Claims, s: ProvisioningSettings) -> DesiredState:
    """The desired state with the claims' groups as the portal's groups (a portal with no group rules)."""
    return desired_state(user, s, user.groups)


def existing_user(**fields) -> dict:
    return {
        "id": 7,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "user_type": "learner",
        **fields,
    }


def test_defaults_and_derived_base_url():
    s = ProvisioningSettings()
    assert (s.enabled, s.on_failure, s.budget_seconds, s.state_ttl_seconds) == (False, "continue", 5.0, 86400)
    assert s.membership_type is None  # LearnUpon's Associations field: sent only when set
    assert s.api_base_url("acme") == "https://acme.learnupon.com/api/v1/"
    assert settings(base_url="http://127.0.0.1:9/api/v1").api_base_url("acme") == "http://127.0.0.1:9/api/v1/"


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown_field": 1},
        {"on_failure": "retry"},
        {"budget_seconds": 0},
        {"user_type_rules": [{"group": "Staff", "user_type": "owner"}]},
        {"enrollments": [{"groups": ["Staff"], "courses": []}]},
        {"enrollments": [{"groups": ["Staff"], "learning_paths": [3], "unenroll": True}]},
        {"enrollments": [{"groups": ["Staff"], "courses": [" "]}]},
        {"membership_type": "Gold"},
        {"base_url": "https://user:key@acme.learnupon.com/api/v1/"},
        {"username_env": None},
    ],
)
def test_invalid_settings_are_refused_with_the_field(bad):
    with pytest.raises(ValidationError) as caught:
        settings(**bad)
    assert next(iter(bad)) in str(caught.value)
    assert "key@" not in str(caught.value)


def test_credentials_come_from_the_named_environment_variables():
    s = settings()
    assert s.credentials({"LU_USER": "u", "LU_KEY": "k"}) == ("u", "k")
    with pytest.raises(ConfigError, match="LU_KEY"):
        s.credentials({"LU_USER": "u"})
    client = build_client("acme", settings(budget_seconds=2), {"LU_USER": "u", "LU_KEY": "k"})
    assert client.base_url == "https://acme.learnupon.com/api/v1/"
    assert client.timeout == (2, 2)


def test_desired_state_is_independent_of_group_order_and_case_duplicates():
    a = desire(claims(groups=("Staff", "LU-Eng", "staff", " ")), settings())
    b = desire(claims(groups=("LU-Eng", "Staff")), settings())
    assert a.groups == ("Staff", "LU-Eng")  # the assertion's order
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != desire(claims(last_name="King"), settings()).fingerprint()


def test_user_type_is_managed_only_with_rules_first_match_wins_default_learner():
    assert desire(claims(), settings()).user_type is None
    rules = [{"group": "Managers", "user_type": "manager"}, {"group": "staff", "user_type": "instructor"}]
    assert (
        desire(claims(groups=("Staff", "Managers")), settings(user_type_rules=rules)).user_type == "manager"
    )
    assert desire(claims(groups=("Other",)), settings(user_type_rules=rules)).user_type == "learner"


def test_enrollment_rules_add_up_per_group():
    rules = [
        {"groups": ["Staff"], "courses": [3, 1]},
        {"groups": ["LU-*"], "courses": [1, "Safety First"], "learning_paths": ["New Starters"]},
        {"groups": ["Finance"], "courses": [9]},
    ]
    desired = desire(claims(groups=("Staff", "LU-Eng", "Other")), settings(enrollments=rules))
    assert desired.enrollments == (
        Target("course", 1), Target("course", 3), Target("course", "Safety First"),
        Target("learning_path", "New Starters"),
    )  # fmt: skip
    assert desired.unenrollments == ()
    assert desired.planned_enrollments() == [
        "course 1", "course 3", "course 'Safety First'", "learning path 'New Starters'"
    ]  # fmt: skip


def test_managed_groups_by_name_or_fnmatch_pattern_case_insensitive():
    desired = desire(claims(), settings(managed_groups=["Sales"], managed_group_patterns=["lu-*", "Team ?"]))
    assert desired.is_managed("SALES")
    assert desired.is_managed("LU-Engineering")
    assert desired.is_managed("team A")
    assert not desired.is_managed("Team AB")
    assert not desired.is_managed("Book Club")


def test_plan_for_a_new_user():
    desired = desire(claims(groups=("Staff", "New")), settings())
    calls = plan(desired, CurrentState(user=None, known_groups={"staff": 5}))
    assert [(c.op, c.group, c.group_id) for c in calls] == [
        ("create_user", None, None),
        ("add_membership", "Staff", 5),
        ("create_group", "New", None),
        ("add_membership", "New", None),
    ]
    assert calls[0].fields == {
        "email": "ada@example.com",
        "user_type": "learner",
        "first_name": "Ada",
        "last_name": "Lovelace",
    }
    member = desire(claims(), settings(membership_type="Member"))  # opt-in: Associations portals only
    assert plan(member, CurrentState(user=None))[0].fields["membership_type"] == "Member"


def test_plan_updates_only_changed_fields_and_never_blanks_a_name():
    desired = desire(claims(first_name="", last_name="King", groups=()), settings())
    calls = plan(desired, CurrentState(user=existing_user()))
    assert [(c.op, dict(c.fields)) for c in calls] == [("update_user", {"last_name": "King"})]


def test_plan_leaves_fields_the_record_does_not_show():
    user = existing_user()
    desired = desire(claims(groups=()), settings(membership_type="Non-member"))
    assert plan(desired, CurrentState(user=user)) == []


def test_plan_removes_only_managed_groups_the_user_left():
    desired = desire(claims(groups=("Staff",)), settings(managed_group_patterns=["LU-*"]))
    current = CurrentState(
        user=existing_user(),
        groups=(CurrentGroup(1, "Staff"), CurrentGroup(2, "LU-Old"), CurrentGroup(3, "Book Club")),
    )
    assert [(c.op, c.group_id) for c in plan(desired, current)] == [("remove_membership", 2)]


def test_plan_enrolls_only_on_missing_courses_and_learning_paths():
    rules = [{"groups": ["Staff"], "courses": [1, 2, "Safety"], "learning_paths": [7, 8]}]
    desired = desire(claims(), settings(enrollments=rules))
    current = CurrentState(
        user=existing_user(),
        groups=(CurrentGroup(1, "Staff"),),
        enrollments=(CurrentEnrollment(50, 1, "completed"), CurrentEnrollment(51, 5, "in_progress")),
        learning_path_ids=frozenset({8}),
        catalog={("course", "safety"): 5},
    )
    assert [(c.op, c.target_id) for c in plan(desired, current)] == [
        ("enroll", 2),
        ("enroll_learning_path", 7),
    ]
    everything = CurrentState(
        user=existing_user(),
        groups=(CurrentGroup(1, "Staff"),),
        enrollments=(CurrentEnrollment(50, 1, "completed"), CurrentEnrollment(52, 2, "not_started"),
                     CurrentEnrollment(51, 5, "in_progress")),
        learning_path_ids=frozenset({7, 8}),
        catalog={("course", "safety"): 5},
    )  # fmt: skip
    assert plan(desired, everything) == []  # already enrolled: no call


def test_offline_plan_names_courses_by_title_until_looked_up():
    desired = desire(claims(), settings(enrollments=[{"groups": ["staff"], "courses": ["Safety"]}]))
    (call,) = plan(desired, CurrentState(user=existing_user(), groups=(CurrentGroup(1, "Staff"),)))
    assert (call.op, call.target_id) == ("enroll", None)
    assert call.describe() == "POST enrollments course 'Safety' (id looked up by title)"


def test_never_unenrolls_unless_the_rule_says_so_and_only_unfinished_courses():
    keep = {"groups": ["Sales"], "courses": [1]}
    drop = {"groups": ["LU-*"], "courses": [2, 3, 4], "unenroll": True}
    also = {"groups": ["Staff"], "courses": [4]}  # still gives course 4
    current = CurrentState(
        user=existing_user(),
        groups=(CurrentGroup(1, "Staff"),),
        enrollments=(CurrentEnrollment(61, 1, "in_progress"), CurrentEnrollment(62, 2, "not_started"),
                     CurrentEnrollment(63, 3, "completed"), CurrentEnrollment(64, 4, "in_progress")),
    )  # fmt: skip
    desired = desire(claims(groups=("Staff",)), settings(enrollments=[keep, drop, also]))
    assert desired.unenrollments == (Target("course", 2), Target("course", 3))
    calls = plan(desired, current)
    assert [(c.op, c.enrollment_id) for c in calls] == [("unenroll", 62)]  # 3 is completed: history stays
    assert calls[0].describe() == "DELETE enrollments/62 course 2"
    without = desire(
        claims(groups=("Staff",)), settings(enrollments=[keep, {**drop, "unenroll": False}, also])
    )
    assert plan(without, current) == []
