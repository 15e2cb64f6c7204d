"""A test IdP for the demo and the end-to-end tests: a tiny login form, Entra- or Okta-shaped responses.

It does what a real IdP does with the broker's AuthnRequest: decodes it from the redirect, shows who may sign
in, and POSTs a signed Response (InResponseTo the request) to the ACS the request named, if that ACS is one
it was told to trust.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, render_template, request

from broker.demo.idp_response import DemoUser, ResponseSpec, build_response, encode
from broker.keys import KeyPair
from broker.saml.authn_request import decode_redirect_request
from broker.saml.metadata import idp_metadata
from broker.saml.xml import SAML, UnsafeXml, parse_untrusted, qname


@dataclass
class TestIdpSettings:
    name: str
    entity_id: str
    sso_path: str  # e.g. "/<tenant>/saml2"
    key_pair: KeyPair
    users: list[DemoUser]
    trusted_acs: list[str]
    audience: str  # the broker's SP entity ID
    shape: str = "entra"
    tenant_id: str = ""
    sign: str = "assertion"
    portals: list[str] = field(default_factory=list)  # offered as IdP-initiated tiles (RelayState)
    scim: Any = None  # an EntraScimPush: the "Disable user" buttons send Entra's SCIM PATCH through it
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def create_test_idp(settings: TestIdpSettings) -> Flask:
    app = Flask(__name__, template_folder="templates")
    app.extensions["test_idp"] = settings

    def find_user(email: str) -> DemoUser | None:
        # looked up on each request: like a real IdP's admin, a test can add users while it runs
        return next((user for user in settings.users if user.email == email), None)

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @app.get("/federationmetadata.xml")
    def metadata() -> Response:
        base = request.host_url.rstrip("/")
        xml = idp_metadata(settings.entity_id, base + settings.sso_path, [settings.key_pair])
        return Response(xml, mimetype="application/samlmetadata+xml")

    @app.get(settings.sso_path)
    def sso() -> str:
        try:
            request_xml = parse_untrusted(decode_redirect_request(request.args.get("SAMLRequest", "")))
        except (ValueError, UnsafeXml) as exc:
            abort(400, f"cannot read the AuthnRequest: {exc}")
        acs_url = request_xml.get("AssertionConsumerServiceURL")
        if acs_url not in settings.trusted_acs:
            abort(400, f"this test IdP does not know the ACS {acs_url!r}")
        issuer = request_xml.findtext(qname(SAML, "Issuer"))
        return render_template(
            "test_idp_login.html",
            idp=settings,
            users=settings.users,
            request_id=request_xml.get("ID"),
            acs_url=acs_url,
            sp_issuer=issuer,
            relay_state=request.args.get("RelayState", ""),
            nonce=secrets.token_urlsafe(8),
        )

    @app.get(settings.sso_path + "/apps")
    def my_apps() -> str:
        """Like Entra's My Apps: a tile starts an IdP-initiated login (an unsolicited response)."""
        return render_template(
            "test_idp_apps.html", idp=settings, users=settings.users, acs_url=settings.trusted_acs[0],
            portals=settings.portals,
        )  # fmt: skip

    @app.post(settings.sso_path + "/scim/disable")
    def disable_user() -> Response:
        """Like disabling a user in Entra: the provisioning service sends `active` false over SCIM."""
        user = find_user(request.form.get("email", ""))
        if settings.scim is None or user is None:
            abort(404)
        try:
            scim_id = settings.scim.disable(user)
        except Exception as exc:  # the demo shows what went wrong instead of a bare 500
            return Response(f"SCIM push failed: {exc}", status=502, mimetype="text/plain")
        return Response(
            f'Disabled {user.email}: sent PATCH /Users/{scim_id} with active "False" to the broker\'s SCIM '
            "endpoint. Their next sign-in to a portal is refused.",
            mimetype="text/plain",
        )

    @app.post(settings.sso_path)
    def sign_in() -> str:
        user = find_user(request.form.get("email", ""))
        acs_url = request.form.get("acs_url", "")
        if user is None or acs_url not in settings.trusted_acs:
            abort(400, "unknown user or ACS")
        attributes = (
            user.okta_attributes() if settings.shape == "okta" else user.entra_attributes(settings.tenant_id)
        )
        spec = ResponseSpec(
            issuer=settings.entity_id,
            destination=acs_url,
            audience=settings.audience,
            name_id=user.email,
            attributes=attributes,
            in_response_to=request.form.get("request_id") or None,
            now=settings.clock(),
            shape=settings.shape,
            sign=settings.sign,
        )
        document = build_response(spec, settings.key_pair)
        return render_template(
            "test_idp_post.html",
            idp=settings,
            acs_url=acs_url,
            saml_response=encode(document),
            relay_state=request.form.get("relay_state", ""),
        )

    return app
