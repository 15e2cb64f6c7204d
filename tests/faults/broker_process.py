"""The broker as operators run it: gunicorn with deploy/gunicorn.conf.py (gthread) in its own process, and a
browser's whole login against it (GET /login → the test IdP's signed answer → POST /saml/acs)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
import yaml
from lxml import etree

from broker.demo.idp_response import DemoUser, ResponseSpec, build_response, encode
from broker.saml.authn_request import decode_redirect_request
from tests.conftest import _free_port
from tests.harness import ACS, ALEX, IDP_ENTITY, SP_ENTITY, TENANT, Keys

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn_broker(
    folder: Path, config: dict, env: dict[str, str] | None = None, *, workers: int = 1, threads: int = 4
) -> Iterator[str]:
    """gunicorn serving `config`; yields its base URL. Its log is `folder/gunicorn.log`."""
    path = folder / "broker.yaml"
    path.write_text(yaml.safe_dump(config))
    port = _free_port()
    process_env = {**os.environ, **(env or {}), "BROKER_CONFIG": str(path), "BROKER_BIND": f"127.0.0.1:{port}",
                   "WEB_CONCURRENCY": str(workers), "BROKER_THREADS": str(threads),
                   "BROKER_SECRET_KEY": "faults-secret-key-0123456789abcdef", "BROKER_LOG_FORMAT": "text",
                   "PYTHONPATH": str(REPO), "BROKER_MAX_REQUESTS": "0"}  # fmt: skip
    process_env.pop("REDIS_URL", None)
    log = (folder / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(REPO / "deploy" / "gunicorn.conf.py"), "broker.wsgi:app"],
        cwd=REPO, env=process_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start: {(folder / 'gunicorn.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def new_user(n: int | None = None) -> DemoUser:
    """Alex's attributes under a new address (each login its own user, as in a cohort's first day)."""
    tag = n if n is not None else secrets.token_hex(4)
    return DemoUser(f"user{tag}@contoso.example", "Test", f"User {tag}", ALEX.object_id, list(ALEX.groups),
                    ALEX.department)  # fmt: skip


def full_login(base: str, keys: Keys, user: DemoUser, portal: str = "academy") -> requests.Response:
    """One browser login: GET /login/<portal>, the IdP's signed answer, POST /saml/acs."""
    with requests.Session() as browser:
        start = browser.get(f"{base}/login/{portal}", allow_redirects=False, timeout=30)
        if start.status_code != 302:
            return start  # refused at the start (e.g. 503 while the store is down)
        params = parse_qs(urlsplit(start.headers["Location"]).query)
        request_id = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0])).get("ID")
        spec = ResponseSpec(issuer=IDP_ENTITY, destination=ACS, audience=SP_ENTITY, name_id=user.email,
                            attributes=user.entra_attributes(TENANT), in_response_to=request_id,
                            now=datetime.now(UTC))  # fmt: skip
        form = {"SAMLResponse": encode(build_response(spec, keys.idp)), "RelayState": params["RelayState"][0]}
        # the broker's cookies are Secure (it runs behind TLS); this test talks plain http to gunicorn, where
        # requests would keep the login's browser-binding cookie back, so it is sent as a browser on https would
        binding = {"broker_browser": start.cookies.get("broker_browser", "")}
        return browser.post(f"{base}/saml/acs", data=form, cookies=binding, timeout=60)
