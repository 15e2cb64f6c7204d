"""The pure parts: settings validation, desired_state and plan, without HTTP."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.errors import ConfigError
from broker.model import Claims
from broker.provisioning.plan import CurrentGroup, CurrentState, ProvisioningSettings, desired_state, plan
from broker.provisioning.sync import build_client

BASE = {"enabled": True, "username_env": "LU_USER", "password_env": "LU_KEY"}


def settings(**changes) -> ProvisioningSettings:
    return ProvisioningSettings.model_validate({**BASE, **changes})


def claims(**changes) -> Claims:
    values = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "groups": ("Staff",)}
    return Claims(**{**values, **changes})


def existing_user(**fields) -> dict:
    return {
        "id": 7,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "user_type": "learner",
        "membership_type": "Member",
        **fields,
    }


def test_defaults_and_derived_base_url():
    s = ProvisioningSettings()
    assert (s.enabled, s.on_failure, s.budget_seconds, s.state_ttl_seconds) == (False, "continue", 5.0, 86400)
    assert s.membership_type == "Member"
    assert s.api_base_url("acme") == "https://acme.learnupon.com/api/v1/"
    assert settings(base_url="http://127.0.0.1:9/api/v1").api_base_url("acme") == "http://127.0.0.1:9/api/v1/"


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown_field": 1},
        {"on_failure": "retry"},
        {"budget_seconds": 0},
        {"user_type_rules": [{"group": "Staff", "user_type": "owner"}]},
        {"enrollment_rules": [{"group": "Staff", "course_ids": []}]},
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
    a = desired_state(claims(groups=("Staff", "LU-Eng", "staff", " ")), settings())
    b = desired_state(claims(groups=("LU-Eng", "Staff")), settings())
    assert a.groups == ("LU-Eng", "Staff")
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != desired_state(claims(last_name="King"), settings()).fingerprint()


def test_user_type_is_managed_only_with_rules_first_match_wins_default_learner():
    assert desired_state(claims(), settings()).user_type is None
    rules = [{"group": "Managers", "user_type": "manager"}, {"group": "staff", "user_type": "instructor"}]
    assert (
        desired_state(claims(groups=("Staff", "Managers")), settings(user_type_rules=rules)).user_type
        == "manager"
    )
    assert desired_state(claims(groups=("Other",)), settings(user_type_rules=rules)).user_type == "learner"


def test_enrollment_rules_add_up_per_group():
    rules = [{"group": "Staff", "course_ids": [3, 1]}, {"group": "LU-Eng", "course_ids": [1, 2]}]
    desired = desired_state(claims(groups=("Staff", "LU-Eng", "Other")), settings(enrollment_rules=rules))
    assert desired.course_ids == (1, 2, 3)


def test_managed_groups_by_name_or_fnmatch_pattern_case_insensitive():
    desired = desired_state(
        claims(), settings(managed_groups=["Sales"], managed_group_patterns=["lu-*", "Team ?"])
    )
    assert desired.is_managed("SALES")
    assert desired.is_managed("LU-Engineering")
    assert desired.is_managed("team A")
    assert not desired.is_managed("Team AB")
    assert not desired.is_managed("Book Club")


def test_plan_for_a_new_user():
    desired = desired_state(claims(groups=("Staff", "New")), settings())
    calls = plan(desired, CurrentState(user=None, known_groups={"staff": 5}))
    assert [(c.op, c.group, c.group_id) for c in calls] == [
        ("create_user", None, None),
        ("create_group", "New", None),
        ("add_membership", "New", None),
        ("add_membership", "Staff", 5),
    ]
    assert calls[0].fields == {
        "email": "ada@example.com",
        "user_type": "learner",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "membership_type": "Member",
    }


def test_plan_updates_only_changed_fields_and_never_blanks_a_name():
    desired = desired_state(claims(first_name="", last_name="King", groups=()), settings())
    calls = plan(desired, CurrentState(user=existing_user()))
    assert [(c.op, dict(c.fields)) for c in calls] == [("update_user", {"last_name": "King"})]


def test_plan_leaves_fields_the_record_does_not_show():
    user = existing_user()
    del user["membership_type"]
    desired = desired_state(claims(groups=()), settings(membership_type="Non-member"))
    assert plan(desired, CurrentState(user=user)) == []


def test_plan_removes_only_managed_groups_the_user_left():
    desired = desired_state(claims(groups=("Staff",)), settings(managed_group_patterns=["LU-*"]))
    current = CurrentState(
        user=existing_user(),
        groups=(CurrentGroup(1, "Staff"), CurrentGroup(2, "LU-Old"), CurrentGroup(3, "Book Club")),
    )
    assert [(c.op, c.group_id) for c in plan(desired, current)] == [("remove_membership", 2)]


def test_plan_enrolls_only_on_missing_courses():
    rules = [{"group": "Staff", "course_ids": [1, 2]}]
    desired = desired_state(claims(), settings(enrollment_rules=rules))
    current = CurrentState(
        user=existing_user(), groups=(CurrentGroup(1, "Staff"),), course_ids=frozenset({1})
    )
    assert [(c.op, c.course_id) for c in plan(desired, current)] == [("enroll", 2)]
