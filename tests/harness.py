"""A broker under test: config, app, test client, and a way to forge valid (or deliberately bad) responses."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from broker.app import create_app
from broker.config import config_from_dict
from broker.demo.idp_response import DemoUser, ResponseSpec, build_response
from broker.keys import KeyPair
from broker.saml.authn_request import decode_redirect_request
from broker.store import Store
from broker.web.binding import BROWSER_COOKIE

TENANT = "11111111-2222-4333-8444-555555555555"
IDP_ENTITY = f"https://sts.windows.net/{TENANT}/"
IDP_SSO = f"https://login.microsoftonline.com/{TENANT}/saml2"
BASE_URL = "https://broker.test"
ACS = BASE_URL + "/saml/acs"
SP_ENTITY = BASE_URL + "/saml/metadata"

ALEX = DemoUser(
    "alex@contoso.example", "Alex", "Morgan", "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41",
    ["c2a1e5f0-8b7d-4c3e-a9f6-1d2e3f4a5b6c"], "Sales",
)  # fmt: skip


@dataclass
class Keys:
    folder: Path
    broker: KeyPair
    portal: KeyPair
    idp: KeyPair
    idp_next: KeyPair
    attacker: KeyPair
    okta: KeyPair

    def path(self, name: str, kind: str) -> str:
        return str(self.folder / f"{name}.{kind}")


@dataclass
class Pending:
    relay_state: str
    request_id: str
    location: str
    authn_request: etree._Element


def base_config(keys: Keys, **overrides: object) -> dict:
    config = {
        "broker": {"base_url": BASE_URL, "signing": {"key": keys.path("broker", "key"),
                                                     "cert": keys.path("broker", "crt")}},
        "store": {"url": "memory://"},
        # Off here (tests post many logins from 127.0.0.1); tests/web/test_rate_limits.py turns them on.
        "rate_limits": {"login_per_minute": 0, "acs_per_minute": 0},
        "upstreams": {
            "entra": {"preset": "entra", "entity_id": IDP_ENTITY, "sso_url": IDP_SSO,
                      "certificates": [keys.path("idp", "crt")]},
        },
        "portals": {
            "academy": {"upstream": "entra", "display_name": "Contoso Academy"},
            "sales": {"upstream": "entra", "algorithm": "rsa-sha1",
                      "signing": {"key": keys.path("portal", "key"), "cert": keys.path("portal", "crt")}},
        },
    }  # fmt: skip
    for dotted, value in overrides.items():
        node = config
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return config


@dataclass
class Harness:
    keys: Keys
    store: Store | None = None
    config_overrides: dict = field(default_factory=dict)
    shape: str = (
        "entra"  # how the test IdP shapes and signs responses ("okta": PrefixList, xs:string, saml2:)
    )

    def __post_init__(self) -> None:
        self.config = config_from_dict(base_config(self.keys, **self.config_overrides))
        self.app = create_app(self.config, store=self.store)
        self.app.testing = False  # errors go through the real error handlers, as in production
        self.client = self.app.test_client()
        self.runtime = self.app.extensions["broker"]

    def login(self, portal: str = "academy", target: str | None = None) -> Pending:
        query = {"target": target} if target is not None else None
        reply = self.client.get(f"/login/{portal}", query_string=query)
        assert reply.status_code == 302, reply.get_data(as_text=True)
        location = reply.headers["Location"]
        params = parse_qs(urlsplit(location).query)
        request = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0]))
        return Pending(params["RelayState"][0], request.get("ID"), location, request)

    def share_browser_with(self, other: Harness) -> None:
        """Another replica behind the same load balancer: the same browser, with its binding cookie, reaches it."""
        cookie = other.client.get_cookie(BROWSER_COOKIE)
        if cookie is not None:
            self.client.set_cookie(BROWSER_COOKIE, cookie.value)

    def spec(self, pending: Pending | None, user: DemoUser = ALEX, **changes: object) -> ResponseSpec:
        spec = ResponseSpec(
            issuer=IDP_ENTITY,
            destination=ACS,
            audience=SP_ENTITY,
            name_id=user.email,
            attributes=user.entra_attributes(TENANT),
            in_response_to=pending.request_id if pending else None,
            now=datetime.now(UTC),
            shape=self.shape,
        )
        return replace(spec, **changes)

    def document(self, spec: ResponseSpec, key: KeyPair | None = None) -> bytes:
        return build_response(spec, key or self.keys.idp)

    def encode(self, document: bytes) -> str:
        return base64.b64encode(document).decode("ascii")

    def valid_response(self, pending: Pending, **changes: object) -> str:
        return self.encode(self.document(self.spec(pending, **changes)))

    def post(self, saml_response: str | None, relay_state: str | None):
        form = {}
        if saml_response is not None:
            form["SAMLResponse"] = saml_response
        if relay_state is not None:
            form["RelayState"] = relay_state
        return self.client.post("/saml/acs", data=form)
