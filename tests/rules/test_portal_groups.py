"""The one function that decides a portal's groups for a user (assertion, provisioning, simulate, trace, bulk)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from broker.config import GroupProfile, PortalSettings
from broker.rules.portal_groups import portal_groups

ALEX_GROUPS = ("LU-Sales", "LU-All Staff", "Finance", "lu-partners")


def test_allow_list_then_prefix_stripping_then_renames():
    profile = GroupProfile(allow=["LU-*"], strip_prefixes=["LU-"], rename={"All Staff": "Everyone"})
    assert portal_groups(ALEX_GROUPS, profile) == ("Sales", "Everyone", "partners")


def test_empty_allow_list_passes_every_group():
    assert portal_groups(ALEX_GROUPS, GroupProfile()) == ALEX_GROUPS


def test_the_issue_example_keeps_only_allowed_groups_and_strips_the_prefix():
    profile = GroupProfile(allow=["LU-*", "All Staff"], strip_prefixes=["LU-"])
    okta_groups = ("LU-Sales", "All Staff", "Everyone", "VPN Users")
    assert portal_groups(okta_groups, profile) == ("Sales", "All Staff")


def test_renames_match_case_insensitively_and_static_additions_come_last():
    profile = GroupProfile(rename={"sales team": "Sales"}, add=["All Learners", "sales"])
    assert portal_groups(["Sales Team", "Finance"], profile) == ("Sales", "Finance", "All Learners")


def test_blank_names_and_case_insensitive_duplicates_are_dropped():
    profile = GroupProfile(strip_prefixes=["LU-"])
    assert portal_groups(["LU-Sales", "sales", " ", "", "LU-"], profile) == ("Sales", "LU-")


def test_static_groups_through_static_attributes_are_refused_in_favour_of_groups_add():
    with pytest.raises(ValidationError, match=r"groups\.add"):
        PortalSettings(upstream="entra", static_attributes={"groups": ["Everyone"]})
    # another attribute name is fine
    PortalSettings(upstream="entra", static_attributes={"Region": ["EMEA"]})
