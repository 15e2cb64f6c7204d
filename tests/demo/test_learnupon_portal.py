"""The mock LearnUpon's SAML side does what LearnUpon documents: JIT creation, name updates, adding to and
removing from "Sync group with SAML SSO" groups, and its own sign-in page sending people to the IdP."""

from __future__ import annotations

import pytest
from flask import Flask

from broker.demo.learnupon_portal import MockPortalSettings, create_mock_learnupon, land
from broker.demo.learnupon_state import LearnUponState

FIRST = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
LAST = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
SETTINGS = MockPortalSettings(["00"], "https://academy.learnupon.com")


@pytest.fixture
def state() -> LearnUponState:
    state = LearnUponState("academy")
    for title in ("Sales", "Finance"):
        state.create_group(title, sso_sync=True)
    state.create_group("Book Club")  # not synced
    return state


def landing(state: LearnUponState, **attributes: list[str]):
    with Flask(__name__).test_request_context("/academy/saml/consumer", method="POST"):
        return land(state, "kim@contoso.example", attributes, SETTINGS)


def test_first_login_creates_the_user_and_joins_only_existing_synced_groups(state):
    first = landing(state, **{FIRST: ["Kim"], LAST: ["Lee"], "groups": ["Sales", "Book Club", "Nowhere"]})
    assert first.created
    assert (first.user["first_name"], first.user["last_name"]) == ("Kim", "Lee")
    assert first.groups == ["Sales"]
    assert first.sso_groups_unmatched == ["Book Club", "Nowhere"]
    assert state.find_group("Nowhere") is None  # a login never creates a group


def test_later_logins_add_and_remove_synced_groups_and_update_names(state):
    landing(state, **{FIRST: ["Kim"], LAST: ["Lee"], "groups": ["Sales"]})
    user = state.find_user("kim@contoso.example")
    state.add_membership(state.find_group("Book Club")["id"], user["id"])

    second = landing(state, **{FIRST: ["Kimberly"], LAST: ["Lee"], "groups": ["finance"]})

    assert not second.created and second.name_updated
    assert (second.added, second.removed) == (["Finance"], ["Sales"])
    assert sorted(second.groups) == ["Book Club", "Finance"]
    assert state.find_user("kim@contoso.example")["first_name"] == "Kimberly"


def test_an_assertion_without_groups_leaves_every_synced_group_but_no_other(state):
    landing(state, **{"groups": ["Sales", "Finance"]})
    user = state.find_user("kim@contoso.example")
    state.add_membership(state.find_group("Book Club")["id"], user["id"])
    emptied = landing(state)
    assert sorted(emptied.removed) == ["Finance", "Sales"]
    assert emptied.groups == ["Book Club"]
    assert emptied.user["first_name"] == ""  # no name in the assertion: nothing set


def test_with_the_login_page_disabled_the_portal_sends_sign_ins_to_the_idp_sso_target_url():
    target = "https://broker.example/login/academy"
    state = LearnUponState("academy")
    portals = {"academy": MockPortalSettings(["00"], "aud", login_url=target, disable_login_page=True),
               "open": MockPortalSettings(["00"], "aud", login_url=target)}  # fmt: skip
    client = create_mock_learnupon([state, LearnUponState("open")], portals).test_client()

    redirected = client.get("/academy/users/sign_in")
    assert (redirected.status_code, redirected.headers["Location"]) == (302, target)
    bypass = client.get("/academy/users/sign_in", query_string={"no_sso": "true"})  # the local-login bypass
    assert bypass.status_code == 200 and 'id="sign-in"' in bypass.get_data(as_text=True)
    not_disabled = client.get("/open/users/sign_in")
    assert not_disabled.status_code == 200
    assert f'id="sso" href="{target}"' in not_disabled.get_data(as_text=True)


def test_the_portal_page_shows_each_users_groups_and_enrolments(state):
    state.add_course(11, "Safety First")
    landing(state, **{FIRST: ["Kim"], "groups": ["Sales"]})
    state.enroll(state.find_user("kim@contoso.example")["id"], 11)
    client = create_mock_learnupon([state], {"academy": SETTINGS}).test_client()
    page = client.get("/academy/").get_data(as_text=True)
    assert '<td class="groups">Sales (SAML sync)</td>' in page
    assert '<td class="enrollments">Safety First</td>' in page
