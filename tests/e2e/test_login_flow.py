"""The whole login over real HTTP on loopback: bookmark → test IdP → broker ACS → mock LearnUpon.

The servers are the demo's own apps on free ports (tests/demo_servers.py); the "browser" follows redirects
and submits the auto-post forms the way a browser without JavaScript would.
"""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.demo_servers import groups_on_page, running_demo, sign_in, submit_form, to_portal_form


@pytest.fixture
def demo(tmp_path):
    """A fresh demo per test here: these tests look at first logins."""
    with running_demo(tmp_path) as running:
        yield running


def test_bookmark_to_portal_with_user_provisioned_before_the_assertion_lands(demo):
    state = demo.apps.learnupon_states["academy"]
    session, broker_form = to_portal_form(demo.urls, "academy", "alex.morgan@contoso.example", "/courses/123")
    # The broker has answered with the auto-post form; the portal has not seen the assertion yet, but the
    # user and their group memberships already exist through the API.
    user = state.find_user("alex.morgan@contoso.example")
    assert user is not None and (user["first_name"], user["last_name"]) == ("Alex", "Morgan")
    assert sorted(g["title"] for g in state.groups_of(user["id"])) == ["All Staff", "Sales Team"]
    assert user["sign_in_count"] == 0
    landed = submit_form(session, broker_form)
    assert landed.url == f"{demo.urls.learnupon}/academy/saml/consumer"
    assert "Signed in to academy as alex.morgan@contoso.example" in landed.text
    assert '<code id="relay-state">/courses/123</code>' in landed.text
    assert groups_on_page(landed) == ["All Staff", "Sales Team"]
    assert state.find_user("alex.morgan@contoso.example")["sign_in_count"] == 1


def test_a_course_appears_after_first_login_from_the_portals_enrolment_rule(demo):
    state = demo.apps.learnupon_states["academy"]
    landed = sign_in(demo.urls, "academy", "priya.shah@contoso.example")  # All Staff, Finance
    enrolled = re.search(r'<ul id="enrollments">(.*?)</ul>', landed.text, re.S)[1]
    assert "<li>Welcome to Contoso</li>" in enrolled  # All Staff → course titled "Welcome to Contoso"
    assert "Pricing Basics" not in enrolled  # the Sales* rule does not apply
    user = state.find_user("priya.shah@contoso.example")
    assert [e["course_id"] for e in state.enrollments_of(user["id"])] == [2001]
    portal_page = requests.get(f"{demo.urls.learnupon}/academy/", timeout=10).text
    assert '<td class="enrollments">Welcome to Contoso</td>' in portal_page


def test_the_portals_own_sign_in_page_goes_through_the_broker(demo):
    session = requests.Session()
    page = session.get(f"{demo.urls.learnupon}/academy/users/sign_in", timeout=10)  # follows the redirect
    assert page.history[0].headers["Location"] == f"{demo.urls.broker}/login/academy"
    assert page.url == f"{demo.urls.broker}/login/academy"  # two upstreams: the broker's discovery page
    assert page.status_code == 200 and "Fabrikam partners (Okta)" in page.text
    local = session.get(f"{demo.urls.learnupon}/academy/users/sign_in?no_sso=true", timeout=10)
    assert 'id="sign-in"' in local.text


def test_repeat_login_makes_no_learnupon_api_call(demo):
    state = demo.apps.learnupon_states["academy"]
    sign_in(demo.urls, "academy", "alex.morgan@contoso.example")
    state.clear_log()
    again = sign_in(demo.urls, "academy", "alex.morgan@contoso.example")
    assert "Signed in to academy" in again.text
    assert state.calls() == []


def test_group_guids_reach_the_portal_as_names_via_static_map_and_graph(demo):
    landed = sign_in(demo.urls, "academy", "sam.lee@contoso.example")
    assert groups_on_page(landed) == ["All Staff", "Engineering", "Sales EMEA"]
    assert "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d" not in landed.text


def test_overage_user_gets_groups_from_graph(demo):
    landed = sign_in(demo.urls, "academy", "priya.shah@contoso.example")
    assert groups_on_page(landed) == ["All Staff", "Finance"]


def test_second_portal_uses_its_own_key_sha1_jit_and_group_allow_list(demo):
    landed = sign_in(demo.urls, "sales", "alex.morgan@contoso.example")
    assert "Signed in to sales as alex.morgan@contoso.example" in landed.text
    assert "New user created on first login (JIT)" in landed.text
    assert groups_on_page(landed) == ["All Staff"]  # "Sales Team" is sent but has no sso_sync group in sales
    assert "Sales Team" in landed.text
    assert demo.apps.learnupon_states["academy"].find_user("alex.morgan@contoso.example") is None


def test_the_mock_portal_refuses_an_assertion_meant_for_another_portal(demo):
    session = requests.Session()
    login_page = session.get(f"{demo.urls.broker}/login/academy?idp=entra", timeout=10)
    to_broker = submit_form(session, submit_form(session, login_page, email="sam.lee@contoso.example"))
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', to_broker.text)}
    wrong = session.post(f"{demo.urls.learnupon}/sales/saml/consumer", data=fields, timeout=10)
    assert wrong.status_code == 403


@pytest.mark.redis
def test_whole_flow_with_the_redis_store(tmp_path, redis_url):
    with running_demo(tmp_path, redis_url) as running:
        landed = sign_in(running.urls, "academy", "sam.lee@contoso.example")
        assert "Signed in to academy as sam.lee@contoso.example" in landed.text
