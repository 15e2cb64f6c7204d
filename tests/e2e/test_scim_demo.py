"""The demo's SCIM story end to end: the fake Entra's "Disable user" button sends Entra's SCIM PATCH to the
broker, the broker disables the user in the mock LearnUpon portal, and that portal refuses the next sign-in.
Also: `broker demo` prints the SCIM base URL and a bearer token that works."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from broker.demo.run import TENANT_ID
from tests.demo_servers import sign_in, to_portal_form

ALEX = "alex.morgan@contoso.example"


def test_disable_user_button_locks_the_user_out(demo):
    urls = demo.urls
    landing = sign_in(urls, "academy", ALEX)
    assert landing.status_code == 200 and ALEX in landing.text  # signs in before

    apps_page = requests.get(f"{urls.idp}/entra/{TENANT_ID}/saml2/apps", timeout=10)
    assert "Disable user Alex Morgan" in apps_page.text
    response = requests.post(
        f"{urls.idp}/entra/{TENANT_ID}/saml2/scim/disable", data={"email": ALEX}, timeout=30
    )
    assert response.status_code == 200, response.text
    academy = demo.apps.learnupon_states["academy"]
    assert academy.find_user(ALEX)["enabled"] is False
    patches = [
        r for r in academy.request_log() if r.method == "PUT" and r.body == {"User": {"enabled": False}}
    ]
    assert len(patches) == 1

    session, to_portal = to_portal_form(urls, "academy", ALEX)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', to_portal.text))
    refused = session.post(f"{urls.learnupon}/academy/saml/consumer", data=fields, timeout=10)
    assert refused.status_code == 403 and "disabled" in refused.text


def _free_port_block(size: int = 4) -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65535:
            continue
        try:
            held = []
            for offset in range(size):
                s = socket.socket()
                s.bind(("127.0.0.1", base + offset))
                held.append(s)
            for s in held:
                s.close()
            return base
        except OSError:
            for s in held:
                s.close()
    raise RuntimeError("no free block of ports")


@pytest.mark.slow
def test_broker_demo_prints_a_working_scim_url_and_token(tmp_path):
    port = _free_port_block()
    process = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "demo", "--port", str(port), "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        lines: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(lines) < 2:
            line = process.stdout.readline()
            match = re.match(r"^(SCIM base URL|SCIM bearer token): (\S+)$", line.rstrip("\n"))
            if match:
                lines[match[1]] = match[2]
        assert lines["SCIM base URL"] == f"http://127.0.0.1:{port}/scim/v2"
        token = lines["SCIM bearer token"]
        config = requests.get(lines["SCIM base URL"] + "/ServiceProviderConfig",
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
        assert config.status_code == 200 and config.json()["patch"]["supported"] is True
        wrong = requests.get(
            lines["SCIM base URL"] + "/Users", headers={"Authorization": "Bearer nope"}, timeout=10
        )
        assert wrong.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
