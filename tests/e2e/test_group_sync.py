"""One truth for a portal's groups, seen end to end: the broker pre-provisions exactly the groups its assertion
names, and the mock LearnUpon — which, like LearnUpon, adds to and removes from "Sync group with SAML SSO"
groups at each login — ends up with the user in exactly the assertion's groups, login after login."""

from __future__ import annotations

import re

import pytest
import requests

from broker.demo.idp_response import DemoUser
from broker.demo.learnupon_portal import MockPortalSettings, create_mock_learnupon
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from tests.e2e.test_policies import sent_groups
from tests.harness import Harness

GUIDS = {
    "LU-Sales": "6c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
    "All Staff": "7d2e3f4a-5b6c-4d7e-9f80-1b2c3d4e5f60",
    "Everyone": "8e3f4a5b-6c7d-4e8f-a091-2c3d4e5f6071",
    "VPN Users": "9f4a5b6c-7d8e-4f90-b1a2-3d4e5f607182",
    "LU-Finance": "a05b6c7d-8e9f-4a01-82b3-4e5f60718293",
}


def user_in(*groups: str, first_name: str = "Kim") -> DemoUser:
    return DemoUser("kim@contoso.example", first_name, "Lee", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    [GUIDS[g] for g in groups])  # fmt: skip


@pytest.fixture
def portal(keys, monkeypatch):
    """A mock LearnUpon (SAML consumer + strict REST API) on loopback HTTP, trusting the broker's key."""
    monkeypatch.setenv("TEST_LU_USER", "api-user")
    monkeypatch.setenv("TEST_LU_KEY", "api-key")
    state = LearnUponState("academy", api_username="api-user", api_password="api-key")
    state.create_group("All Staff", sso_sync=True)
    book_club = state.create_group("Book Club")  # not synced with SAML: no login touches it
    settings = {"academy": MockPortalSettings([keys.broker.sha1_fingerprint], audience="")}
    with BackgroundServer(create_mock_learnupon([state], settings)) as server:
        settings["academy"].audience = f"{server.url}/academy"
        yield server.url, state, book_club


@pytest.fixture
def harness(keys, portal):
    url = portal[0]
    return Harness(keys, config_overrides={
        "upstreams__entra__groups": {"static_map": {guid: name for name, guid in GUIDS.items()}},
        "portals__academy__acs_url": f"{url}/academy/saml/consumer",
        "portals__academy__audience": f"{url}/academy",
        "portals__academy__groups": {"allow": ["LU-*", "All Staff"], "strip_prefixes": ["LU-"]},
        "portals__academy__provisioning": {"enabled": True, "base_url": f"{url}/academy/api/v1/",
                                           "username_env": "TEST_LU_USER", "password_env": "TEST_LU_KEY"},
    })  # fmt: skip


def log_in(harness: Harness, portal_url: str, user: DemoUser) -> tuple[list[str], requests.Response]:
    """Through the broker (IdP response → ACS → auto-post form), then the browser's POST to the portal."""
    pending = harness.login()
    reply = harness.post(
        harness.encode(harness.document(harness.spec(pending, user=user))), pending.relay_state
    )
    assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', reply.get_data(as_text=True)))
    landed = requests.post(f"{portal_url}/academy/saml/consumer", data=fields, timeout=10)
    assert landed.status_code == 200, landed.text[:300]
    return sent_groups(reply), landed


def synced_groups(state: LearnUponState, email: str) -> list[str]:
    user = state.find_user(email)
    return sorted(g["title"] for g in state.groups_of(user["id"]) if g["sso_sync"])


def test_memberships_equal_the_assertions_groups_after_each_login(harness, portal):
    url, state, book_club = portal

    sent, _ = log_in(harness, url, user_in("LU-Sales", "All Staff", "Everyone", "VPN Users"))
    assert sent == ["Sales", "All Staff"]
    assert synced_groups(state, "kim@contoso.example") == sorted(sent)
    user = state.find_user("kim@contoso.example")
    state.add_membership(book_club["id"], user["id"])  # an admin adds Kim to a group of their own

    sent, landed = log_in(harness, url, user_in("LU-Finance", "VPN Users", first_name="Kimberly"))
    assert sent == ["Finance"]
    assert synced_groups(state, "kim@contoso.example") == ["Finance"]
    assert (
        "Removed by SAML group sync: " in landed.text
    )  # Sales and All Staff: the assertion no longer names them
    titles = sorted(g["title"] for g in state.groups_of(user["id"]))
    assert titles == ["Book Club", "Finance"]  # the unsynced group stays
    assert state.find_user("kim@contoso.example")["first_name"] == "Kimberly"
    assert state.find_group("Everyone") is None and state.find_group("VPN Users") is None  # never created
    assert state.find_group("LU-Sales") is None


def test_pre_provisioning_prepares_the_assertions_groups_before_it_lands(harness, portal):
    url, state, _ = portal
    pending = harness.login()
    user = user_in("LU-Sales", "All Staff", "VPN Users")
    reply = harness.post(
        harness.encode(harness.document(harness.spec(pending, user=user))), pending.relay_state
    )
    # the assertion has not reached the portal yet; the API already holds the user in exactly its groups
    assert synced_groups(state, "kim@contoso.example") == sorted(sent_groups(reply)) == ["All Staff", "Sales"]
    assert state.find_group("Sales")["sso_sync"] is True
