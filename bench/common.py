"""What the benchmarks share: keys, a broker config, an Entra-shaped user, pending logins and signed answers.

Not a benchmark itself. Every script in bench/ imports it as `common` (they run as `python bench/<name>.py`,
so this folder is first on sys.path).
"""

from __future__ import annotations

import io
import itertools
import os
import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from lxml import etree

from broker.demo.idp_response import DemoUser, ResponseSpec, build_response, encode
from broker.keys import KeyPair, generate_key_pair
from broker.saml.authn_request import decode_redirect_request

# The app warns once when the session-signing key comes from nowhere; a benchmark's key may be anything.
os.environ.setdefault("BROKER_SECRET_KEY", "bench-secret-key-not-for-production")

TENANT = "7f3c2a9e-5b1d-4e8f-9a6c-2d4b8e1f0a37"
IDP_ENTITY = f"https://sts.windows.net/{TENANT}/"
BASE_URL = "https://broker.bench"
ACS_URL = BASE_URL + "/saml/acs"
SP_ENTITY = BASE_URL + "/saml/metadata"
PORTAL = "academy"


def make_keys(folder: Path) -> dict[str, KeyPair]:
    """The broker's signing key and the test IdP's (RSA-2048, self-signed), written to `folder`."""
    return {name: generate_key_pair(folder / f"{name}.key", folder / f"{name}.crt", name)
            for name in ("broker", "idp")}  # fmt: skip


def group_ids(count: int) -> list[str]:
    """Entra sends group object GUIDs; fixed ones, so that the static map in the config can name them."""
    return [str(uuid.UUID(int=0x5EC0_0000_0000_4000_8000_000000000000 + i)) for i in range(count)]


def config_dict(folder: Path, *, store_url: str = "memory://", groups: int = 3) -> dict:
    """An Entra upstream (inline, the test IdP's certificate), one portal, groups named by a static map."""
    return {
        "broker": {"base_url": BASE_URL,
                   "signing": {"key": str(folder / "broker.key"), "cert": str(folder / "broker.crt")}},
        "store": {"url": store_url},
        "upstreams": {"entra": {
            "preset": "entra", "entity_id": IDP_ENTITY, "sso_url": f"https://login.microsoftonline.com/{TENANT}/saml2",
            "certificates": [str(folder / "idp.crt")],
            "groups": {"static_map": {gid: f"Group {i:03d}" for i, gid in enumerate(group_ids(groups))}},
        }},
        "portals": {PORTAL: {"upstream": "entra", "display_name": "Contoso Academy"}},
    }  # fmt: skip


def bench_user(groups: int = 3) -> DemoUser:
    """An Entra user in `groups` groups (GUIDs, named by the config's static map)."""
    return DemoUser("alex@contoso.example", "Alex", "Morgan", "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41",
                    group_ids(groups), department="Sales")  # fmt: skip


def user_attributes(user: DemoUser, padding: int = 0) -> dict[str, list[str]]:
    """Entra's claims for `user`, plus `padding` bytes of an extra claim (200-character values) that the
    broker reads and does not send on, to grow the response without changing what goes out."""
    attributes = user.entra_attributes(TENANT)
    if padding:
        attributes["http://schemas.contoso.example/claims/notes"] = ["x" * 200] * max(1, padding // 200)
    return attributes


_client_numbers = itertools.count(1)


def client_ip() -> str:
    """A fresh client address per simulated browser: the broker rate-limits per client IP (60 a minute by
    default), and real logins come from many addresses."""
    n = next(_client_numbers)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def pending_from_location(location: str) -> tuple[str, str]:
    """(RelayState, AuthnRequest ID) from the broker's redirect to the IdP."""
    params = parse_qs(urlsplit(location).query)
    request_id = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0])).get("ID")
    return params["RelayState"][0], request_id


def signed_response(
    keys: dict[str, KeyPair], user: DemoUser, request_id: str | None, padding: int = 0
) -> bytes:
    """What the test IdP POSTs back (assertion signed, RSA-SHA256), with fresh unique IDs."""
    spec = ResponseSpec(
        issuer=IDP_ENTITY, destination=ACS_URL, audience=SP_ENTITY, name_id=user.email,
        attributes=user_attributes(user, padding), in_response_to=request_id, now=datetime.now(UTC),
    )  # fmt: skip
    return build_response(spec, keys["idp"])


def acs_form(document: bytes, relay_state: str) -> bytes:
    return urlencode({"SAMLResponse": encode(document), "RelayState": relay_state}).encode()


# The browser-binding cookie the logins were started with (one benchmark browser); acs_environ sends it back.
_BROWSER = {"cookie": ""}


def prepare_logins(app, keys, user, count: int, padding: int = 0) -> list[tuple[bytes, bytes, str]]:
    """Start `count` logins through the app and have the IdP answer each: [(form body, document, client IP)]."""
    client = app.test_client()
    client.get(f"/login/{PORTAL}")  # the browser-binding cookie every login of this browser carries
    _BROWSER["cookie"] = client.get_cookie("broker_browser").value
    prepared = []
    for _ in range(count):
        ip = client_ip()
        reply = client.get(f"/login/{PORTAL}", environ_base={"REMOTE_ADDR": ip})
        assert reply.status_code == 302, (reply.status_code, reply.get_data()[:300])
        relay_state, request_id = pending_from_location(reply.headers["Location"])
        document = signed_response(keys, user, request_id, padding)
        prepared.append((acs_form(document, relay_state), document, ip))
    return prepared


def acs_environ(body: bytes, ip: str = "127.0.0.1") -> dict:
    """The WSGI environ a server hands the app for the browser's POST (built before the clock starts)."""
    return {"REMOTE_ADDR": ip,
        "REQUEST_METHOD": "POST", "PATH_INFO": "/saml/acs", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "broker.bench", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "broker.bench", "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.version": (1, 0), "HTTP_COOKIE": f"broker_browser={_BROWSER['cookie']}",
    }  # fmt: skip


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000
