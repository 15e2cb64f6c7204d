"""The broker's in-process SAML against pysaml2, both ways.

Upstream leg: a pysaml2 IdP (Entra-shaped identity) answers the broker, which verifies with its own code,
directly and through the Flask app. Portal leg: a pysaml2 SP (LearnUpon's role) accepts what the broker issues.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree, html
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import SignatureError
from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1

from broker.app import create_app
from broker.config import config_from_dict
from broker.errors import SamlRejected
from broker.saml.assertion import PortalTrust, issue_response
from broker.saml.authn_request import decode_redirect_request
from broker.saml.metadata import UpstreamIdp, idp_metadata, parse_idp_metadata, sp_metadata
from broker.saml.response import Expectations, ValidatedResponse, validate_response
from broker.saml.xml import DS
from broker.store.memory import MemoryStore

from .conftest import (
    BROKER_ACS_URL,
    BROKER_IDP_ENTITY_ID,
    BROKER_SP_ENTITY_ID,
    BROKER_URL,
    PORTAL,
    PORTAL_ACS_URL,
    PORTAL_AUDIENCE,
    UPSTREAM_ENTITY_ID,
    UPSTREAM_SSO_URL,
    KeyFiles,
    MakeIdp,
    MakePortal,
)

pytestmark = [pytest.mark.xmlsec1, pytest.mark.usefixtures("xmlsec1_binary")]

CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
EMAIL = "ada.lovelace@contoso.example"
# Values an attacker or an unlucky name might hold: markup characters must come out exactly as they went in.
TRICKY_SURNAME = 'O\'Brien <b>&amp; "Sons"</b>'
ENTRA_IDENTITY = {
    CLAIMS + "givenname": ["Ada"],
    CLAIMS + "surname": [TRICKY_SURNAME],
    CLAIMS + "emailaddress": [EMAIL],
    "http://schemas.microsoft.com/identity/claims/objectidentifier": ["0c0e7d4d-5a1f-4c1e-9d5e-0f7f1d1e2a3b"],
}
REQUEST_ID = "_a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
SIG_RSA_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"

# (sign_assertion, sign_response): Entra's three options "Sign SAML assertion" (its default),
# "Sign SAML response", "Sign SAML response and assertion".
UPSTREAM_SIGNING = {
    "assertion": (True, False),
    "response": (False, True),
    "both": (True, True),
}


# --- helpers ----------------------------------------------------------------------------------------------


def pysaml2_response(
    idp: Server,
    request_id: str,
    *,
    sign_assertion: bool,
    sign_response: bool,
    destination: str = BROKER_ACS_URL,
    sp_entity_id: str = BROKER_SP_ENTITY_ID,
) -> str:
    """The XML of a pysaml2 authn response for the Entra-shaped identity (signed by xmlsec1)."""
    response = idp.create_authn_response(
        ENTRA_IDENTITY,
        in_response_to=request_id,
        destination=destination,
        sp_entity_id=sp_entity_id,
        userid=EMAIL,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=EMAIL),
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": UPSTREAM_ENTITY_ID},
        sign_assertion=sign_assertion,
        sign_response=sign_response,
    )
    return str(response)


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def signature_layout(xml: str) -> dict[str, str]:
    """Which elements carry a ds:Signature, and with which SignatureMethod: {"Response": uri, ...}."""
    root = etree.fromstring(xml.encode("utf-8"))
    found = {}
    for signature in root.iter(f"{{{DS}}}Signature"):
        method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
        found[etree.QName(signature.getparent()).localname] = method.get("Algorithm")
    return found


def tamper_name_id(xml: str, new_value: str = "mallory@evil.example") -> str:
    """Change the NameID text after signing, keeping everything else byte for byte."""
    tampered, count = re.subn(r"(<[\w:]*NameID\b[^>]*>)[^<]+", lambda m: m.group(1) + new_value, xml, count=1)
    assert count == 1 and new_value in tampered
    return tampered


def expectations(upstream: UpstreamIdp, *, allow_sha1: bool = False) -> Expectations:
    return Expectations(
        upstream_name="entra",
        upstream=upstream,
        sp_entity_id=BROKER_SP_ENTITY_ID,
        acs_url=BROKER_ACS_URL,
        request_id=REQUEST_ID,
        now=datetime.now(UTC),
        skew=timedelta(minutes=3),
        max_bytes=256 * 1024,
        allow_sha1=allow_sha1,
    )


def assert_entra_identity(validated: ValidatedResponse) -> None:
    identity = validated.identity
    assert identity.issuer == UPSTREAM_ENTITY_ID
    assert identity.name_id == EMAIL
    assert identity.name_id_format == NAMEID_FORMAT_EMAILADDRESS
    assert identity.in_response_to == REQUEST_ID
    assert identity.attributes[CLAIMS + "givenname"] == ("Ada",)
    assert identity.attributes[CLAIMS + "surname"] == (TRICKY_SURNAME,)
    assert identity.attributes[CLAIMS + "emailaddress"] == (EMAIL,)


@pytest.fixture
def broker_sp_metadata(broker_keys: KeyFiles) -> bytes:
    return sp_metadata(BROKER_SP_ENTITY_ID, BROKER_ACS_URL, broker_keys.pair, sign_requests=False)


# --- upstream leg: pysaml2 IdP → broker.saml.response ------------------------------------------------------


def test_broker_reads_pysaml2_idp_metadata(upstream_metadata: bytes, upstream_keys: KeyFiles) -> None:
    upstream = parse_idp_metadata(upstream_metadata)
    assert upstream.entity_id == UPSTREAM_ENTITY_ID
    assert upstream.sso_url == UPSTREAM_SSO_URL
    assert upstream.certificates == (upstream_keys.pair.certificate,)
    assert upstream.want_authn_requests_signed is False


@pytest.mark.parametrize("signed", list(UPSTREAM_SIGNING))
def test_broker_accepts_pysaml2_response_signed_with_rsa_sha256(
    signed: str, make_upstream_idp: MakeIdp, broker_sp_metadata: bytes, upstream_metadata: bytes
) -> None:
    sign_assertion, sign_response = UPSTREAM_SIGNING[signed]
    idp = make_upstream_idp(broker_sp_metadata)
    xml = pysaml2_response(idp, REQUEST_ID, sign_assertion=sign_assertion, sign_response=sign_response)
    expected_layout = {"Assertion": SIG_RSA_SHA256_URI} if sign_assertion else {}
    if sign_response:
        expected_layout["Response"] = SIG_RSA_SHA256_URI
    assert signature_layout(xml) == expected_layout

    validated = validate_response(b64(xml), expectations(parse_idp_metadata(upstream_metadata)))

    assert_entra_identity(validated)


@pytest.mark.parametrize("signed", list(UPSTREAM_SIGNING))
def test_tampered_pysaml2_response_is_rejected(
    signed: str, make_upstream_idp: MakeIdp, broker_sp_metadata: bytes, upstream_metadata: bytes
) -> None:
    sign_assertion, sign_response = UPSTREAM_SIGNING[signed]
    idp = make_upstream_idp(broker_sp_metadata)
    xml = pysaml2_response(idp, REQUEST_ID, sign_assertion=sign_assertion, sign_response=sign_response)

    with pytest.raises(SamlRejected) as rejected:
        validate_response(b64(tamper_name_id(xml)), expectations(parse_idp_metadata(upstream_metadata)))

    assert rejected.value.check == "signature"


def test_pysaml2_sha1_signature_is_refused_unless_the_upstream_allows_sha1(
    make_upstream_idp: MakeIdp, broker_sp_metadata: bytes, upstream_metadata: bytes
) -> None:
    # rsa-sha1/sha1 is what pysaml2 7.5 uses when its IdP config names no algorithm (or names them at the
    # top level, where Server ignores them); the broker takes SHA-1 upstream only when configured to.
    idp = make_upstream_idp(broker_sp_metadata, signing_algorithm=SIG_RSA_SHA1, digest_algorithm=DIGEST_SHA1)
    saml_response = b64(pysaml2_response(idp, REQUEST_ID, sign_assertion=True, sign_response=False))
    upstream = parse_idp_metadata(upstream_metadata)

    with pytest.raises(SamlRejected) as rejected:
        validate_response(saml_response, expectations(upstream))
    assert rejected.value.check == "signature"
    assert "SHA-1" in rejected.value.reason and "upstreams.entra.allow_sha1: true" in rejected.value.reason

    assert_entra_identity(validate_response(saml_response, expectations(upstream, allow_sha1=True)))


# --- upstream leg through the app: /login → pysaml2 IdP → /saml/acs → auto-post to the portal --------------


@pytest.fixture
def app_and_idp(
    tmp_path: Path, broker_keys: KeyFiles, upstream_metadata: bytes, make_upstream_idp: MakeIdp
) -> tuple[object, Server]:
    metadata_file = tmp_path / "entra-federation-metadata.xml"
    metadata_file.write_bytes(upstream_metadata)
    config = config_from_dict(
        {
            "broker": {
                "base_url": BROKER_URL,
                "signing": {"key": str(broker_keys.key), "cert": str(broker_keys.cert)},
            },
            "upstreams": {"entra": {"preset": "entra", "metadata_file": str(metadata_file)}},
            "portals": {
                PORTAL: {"upstream": "entra", "acs_url": PORTAL_ACS_URL, "audience": PORTAL_AUDIENCE}
            },
        }
    )
    app = create_app(config, store=MemoryStore())
    # pysaml2 learns about the broker from the SP metadata the broker serves.
    served = app.test_client().get("/saml/metadata")
    assert served.status_code == 200
    return app, make_upstream_idp(served.data)


def start_login(client) -> tuple[str, str, str]:
    """GET /login/<portal> → (AuthnRequest ID, RelayState, SAMLRequest) from the redirect to the upstream."""
    started = client.get(f"/login/{PORTAL}")
    assert started.status_code == 302
    location = urlsplit(started.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == UPSTREAM_SSO_URL
    query = parse_qs(location.query)
    (saml_request,), (relay_state,) = query["SAMLRequest"], query["RelayState"]
    request_id = etree.fromstring(decode_redirect_request(saml_request)).get("ID")
    return request_id, relay_state, saml_request


def read_autopost(body: bytes) -> tuple[str, dict[str, str]]:
    form = html.fromstring(body).forms[0]
    return form.action, dict(form.fields)


@pytest.mark.parametrize("signed", ["assertion", "both"])
def test_login_through_the_app_with_pysaml2_as_upstream(
    signed: str, app_and_idp: tuple, broker_keys: KeyFiles, make_portal_sp: MakePortal
) -> None:
    app, idp = app_and_idp
    client = app.test_client()
    request_id, relay_state, saml_request = start_login(client)
    # pysaml2 reads the broker's AuthnRequest as an IdP would, and answers its ID.
    parsed = idp.parse_authn_request(saml_request, BINDING_HTTP_REDIRECT).message
    assert parsed.id == request_id
    assert parsed.issuer.text == BROKER_SP_ENTITY_ID
    assert parsed.assertion_consumer_service_url == BROKER_ACS_URL
    sign_assertion, sign_response = UPSTREAM_SIGNING[signed]
    xml = pysaml2_response(idp, request_id, sign_assertion=sign_assertion, sign_response=sign_response)

    posted = client.post("/saml/acs", data={"SAMLResponse": b64(xml), "RelayState": relay_state})

    assert posted.status_code == 200, posted.get_data(as_text=True)
    action, fields = read_autopost(posted.data)
    assert action == PORTAL_ACS_URL
    # …and the portal's assertion, signed by the broker, is accepted by a pysaml2 SP in LearnUpon's place.
    portal_metadata = client.get(f"/portals/{PORTAL}/metadata?format=xml").data
    portal_sp = make_portal_sp(portal_metadata)
    accepted = portal_sp.parse_authn_request_response(fields["SAMLResponse"], BINDING_HTTP_POST)
    assert accepted.name_id.text == EMAIL
    assert accepted.assertion.issuer.text == BROKER_IDP_ENTITY_ID
    assert raw_attributes(accepted)[CLAIMS + "surname"] == [TRICKY_SURNAME]


def test_tampered_pysaml2_response_gets_an_error_page(app_and_idp: tuple) -> None:
    app, idp = app_and_idp
    client = app.test_client()
    request_id, relay_state, _ = start_login(client)
    xml = pysaml2_response(idp, request_id, sign_assertion=True, sign_response=False)

    posted = client.post(
        "/saml/acs", data={"SAMLResponse": b64(tamper_name_id(xml)), "RelayState": relay_state}
    )

    assert 400 <= posted.status_code < 500
    assert b"SAMLResponse" not in posted.data
    assert b"mallory" not in posted.data


# --- portal leg: broker.saml.assertion → pysaml2 SP ---------------------------------------------------------


def raw_attributes(response) -> dict[str, list[str]]:
    """Attributes as they were in the assertion (names unconverted by pysaml2's attribute maps)."""
    return {
        attribute.name: [value.text for value in attribute.attribute_value]
        for statement in response.assertion.attribute_statement
        for attribute in statement.attribute
    }


PORTAL_ATTRIBUTES = {
    CLAIMS + "givenname": ("Ada <script>alert(1)</script>",),
    CLAIMS + "surname": (TRICKY_SURNAME,),
    CLAIMS + "emailaddress": (EMAIL,),
    "groups": ("R&D", "<Sales & Marketing>", "Quote \"'"),
}


@pytest.mark.parametrize("sign_response", [False, True], ids=["assertion-signed", "response-signed"])
@pytest.mark.parametrize("algorithm", ["rsa-sha256", "rsa-sha1"])
def test_pysaml2_sp_accepts_broker_assertion(
    algorithm: str, sign_response: bool, broker_keys: KeyFiles, make_portal_sp: MakePortal
) -> None:
    trust = PortalTrust(
        idp_entity_id=BROKER_IDP_ENTITY_ID,
        acs_url=PORTAL_ACS_URL,
        audience=PORTAL_AUDIENCE,
        key_pair=broker_keys.pair,
        algorithm=algorithm,
        sign_response=sign_response,
    )
    issued = issue_response(trust, EMAIL, PORTAL_ATTRIBUTES, now=datetime.now(UTC))
    metadata = idp_metadata(BROKER_IDP_ENTITY_ID, f"{BROKER_URL}/login/{PORTAL}", [broker_keys.pair])
    portal_sp = make_portal_sp(metadata, want_response_signed=sign_response)

    accepted = portal_sp.parse_authn_request_response(issued.saml_response, BINDING_HTTP_POST)

    assert accepted.name_id.text == EMAIL
    assert accepted.name_id.format == NAMEID_FORMAT_EMAILADDRESS
    assert accepted.assertion.id == issued.assertion_id
    assert raw_attributes(accepted) == {name: list(values) for name, values in PORTAL_ATTRIBUTES.items()}
    identity = accepted.get_identity()  # through pysaml2's attribute converters
    assert identity["givenName"] == ["Ada <script>alert(1)</script>"]
    assert identity["groups"] == ["R&D", "<Sales & Marketing>", "Quote \"'"]


def test_pysaml2_sp_rejects_tampered_broker_assertion(
    broker_keys: KeyFiles, make_portal_sp: MakePortal
) -> None:
    trust = PortalTrust(BROKER_IDP_ENTITY_ID, PORTAL_ACS_URL, PORTAL_AUDIENCE, broker_keys.pair)
    issued = issue_response(trust, EMAIL, PORTAL_ATTRIBUTES, now=datetime.now(UTC))
    metadata = idp_metadata(BROKER_IDP_ENTITY_ID, f"{BROKER_URL}/login/{PORTAL}", [broker_keys.pair])
    portal_sp = make_portal_sp(metadata)

    with pytest.raises(SignatureError):
        portal_sp.parse_authn_request_response(b64(tamper_name_id(issued.xml.decode())), BINDING_HTTP_POST)
