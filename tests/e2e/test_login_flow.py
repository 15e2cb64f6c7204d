"""The whole login over real HTTP on loopback: bookmark → test IdP → broker ACS → mock LearnUpon.

The three servers are the demo's own apps, served on free ports; the browser is a requests.Session that
follows redirects and submits the auto-post forms the way a browser without JavaScript would.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pytest
import requests

from broker.demo.run import DemoUrls, build_demo
from broker.store import open_store
from broker.webserver import BackgroundServer, LateApp


@dataclass
class RunningDemo:
    urls: DemoUrls
    apps: object
    servers: list[BackgroundServer]


def start_demo(tmp_path, store_url: str = "memory://") -> RunningDemo:
    late = [LateApp(), LateApp(), LateApp()]
    servers = [BackgroundServer(app) for app in late]
    urls = DemoUrls(servers[0].url, servers[1].url, servers[2].url)
    apps = build_demo(tmp_path / "demo", urls, store=open_store(store_url, namespace=f"e2e:{tmp_path.name}:"))
    late[0].app, late[1].app, late[2].app = apps.broker, apps.idp, apps.learnupon
    for server in servers:
        server.start()
    return RunningDemo(urls, apps, servers)


@pytest.fixture
def demo(tmp_path):
    running = start_demo(tmp_path)
    yield running
    for server in running.servers:
        server.stop()


def submit_form(session: requests.Session, page: requests.Response, **extra: str) -> requests.Response:
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', page.text)}
    fields.update(extra)
    action = re.search(r'<form method="post"(?: action="([^"]*)")?', page.text)[1]
    return session.post(html.unescape(action) if action else page.url, data=fields, timeout=10)


def sign_in(urls: DemoUrls, portal: str, email: str, target: str | None = None) -> requests.Response:
    session = requests.Session()
    params = {"target": target} if target else None
    login_page = session.get(f"{urls.broker}/login/{portal}", params=params, timeout=10)  # follows the 302
    assert login_page.url.startswith(urls.idp), login_page.url
    idp_post = submit_form(session, login_page, email=email)  # the user picks who they are
    to_broker = submit_form(session, idp_post)  # the test IdP's auto-post form, to the broker's ACS
    assert to_broker.url == f"{urls.broker}/saml/acs", to_broker.text[:500]
    assert to_broker.status_code == 200, to_broker.text[:500]
    return submit_form(session, to_broker)  # the broker's auto-post form, to the portal


def test_bookmark_to_portal_creates_the_user_on_first_login(demo):
    landed = sign_in(demo.urls, "academy", "alex.morgan@contoso.example", target="/courses/123")
    assert landed.status_code == 200, landed.text
    assert landed.url == f"{demo.urls.learnupon}/academy/saml/consumer"
    assert "Signed in to academy as alex.morgan@contoso.example" in landed.text
    assert "New user created on first login" in landed.text
    assert '<code id="relay-state">/courses/123</code>' in landed.text
    user = demo.apps.learnupon_states["academy"].find_user("alex.morgan@contoso.example")
    assert (user["first_name"], user["last_name"]) == ("Alex", "Morgan")

    again = sign_in(demo.urls, "academy", "alex.morgan@contoso.example")
    assert "Existing user" in again.text


def test_second_portal_uses_its_own_key_and_sha1(demo):
    landed = sign_in(demo.urls, "sales", "priya.shah@contoso.example")
    assert "Signed in to sales as priya.shah@contoso.example" in landed.text
    assert demo.apps.learnupon_states["academy"].find_user("priya.shah@contoso.example") is None


def test_the_mock_portal_refuses_an_assertion_meant_for_another_portal(demo):
    session = requests.Session()
    login_page = session.get(f"{demo.urls.broker}/login/academy", timeout=10)
    to_broker = submit_form(session, submit_form(session, login_page, email="sam.lee@contoso.example"))
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', to_broker.text)}
    wrong = session.post(f"{demo.urls.learnupon}/sales/saml/consumer", data=fields, timeout=10)
    assert wrong.status_code == 403


@pytest.mark.redis
def test_whole_flow_with_the_redis_store(tmp_path, redis_url):
    running = start_demo(tmp_path, redis_url)
    try:
        landed = sign_in(running.urls, "academy", "sam.lee@contoso.example")
        assert "Signed in to academy as sam.lee@contoso.example" in landed.text
    finally:
        for server in running.servers:
            server.stop()
