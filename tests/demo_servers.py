"""The demo's four servers (broker, test IdPs, mock LearnUpon, fake Graph) on free loopback ports, and a
browser without JavaScript: a requests.Session that follows redirects and submits auto-post forms."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests

from broker.demo.run import DemoApps, DemoUrls, build_demo
from broker.demo.webserver import BackgroundServer, LateApp
from broker.store.connect import open_store


@dataclass
class RunningDemo:
    urls: DemoUrls
    apps: DemoApps
    servers: list[BackgroundServer]


@contextmanager
def running_demo(folder: Path, store_url: str = "memory://") -> Iterator[RunningDemo]:
    running = start_demo(folder, store_url)
    try:
        yield running
    finally:
        for server in running.servers:
            server.stop()


def start_demo(tmp_path: Path, store_url: str = "memory://") -> RunningDemo:
    late = [LateApp() for _ in range(4)]
    servers = [BackgroundServer(app) for app in late]
    urls = DemoUrls(*(server.url for server in servers))
    apps = build_demo(tmp_path / "demo", urls, store=open_store(store_url, namespace=f"e2e:{tmp_path.name}:"))
    for holder, app in zip(late, (apps.broker, apps.idp, apps.learnupon, apps.graph), strict=True):
        holder.app = app
    for server in servers:
        server.start()
    return RunningDemo(urls, apps, servers)


def submit_form(session: requests.Session, page: requests.Response, **extra: str) -> requests.Response:
    fields = {k: html.unescape(v) for k, v in re.findall(r'name="(\w+)" value="([^"]*)"', page.text)}
    fields.update(extra)
    action = re.search(r'<form method="post"(?: action="([^"]*)")?', page.text)[1]
    target = urljoin(page.url, html.unescape(action)) if action else page.url
    return session.post(target, data=fields, timeout=10)


def sign_in(urls: DemoUrls, portal: str, email: str, target: str | None = None, idp: str = "entra"):
    session = requests.Session()
    params = {"idp": idp, **({"target": target} if target else {})}
    login_page = session.get(f"{urls.broker}/login/{portal}", params=params, timeout=10)  # follows the 302
    assert login_page.url.startswith(urls.idp), login_page.url
    idp_post = submit_form(session, login_page, email=email)  # the user picks who they are
    to_broker = submit_form(session, idp_post)  # the test IdP's auto-post form, to the broker's ACS
    assert to_broker.url == f"{urls.broker}/saml/acs", to_broker.text[:500]
    assert to_broker.status_code == 200, to_broker.text[:500]
    return submit_form(session, to_broker)  # the broker's auto-post form, to the portal


def to_portal_form(urls: DemoUrls, portal: str, email: str, target: str | None = None, idp: str = "entra"):
    """Everything up to (not including) the browser's POST to the portal."""
    session = requests.Session()
    params = {"idp": idp, **({"target": target} if target else {})}
    login_page = session.get(f"{urls.broker}/login/{portal}", params=params, timeout=10)
    assert login_page.url.startswith(urls.idp), login_page.url
    to_broker = submit_form(session, submit_form(session, login_page, email=email))
    assert to_broker.url == f"{urls.broker}/saml/acs"
    assert to_broker.status_code == 200, to_broker.text[:500]
    return session, to_broker


def groups_on_page(page: requests.Response) -> list[str]:
    block = re.search(r'<ul id="groups">(.*?)</ul>', page.text, re.S)[1]
    return sorted(html.unescape(g) for g in re.findall(r"<li>(.*?)</li>", block) if g != "none")
