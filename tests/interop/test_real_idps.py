"""Documents that real IdPs signed (Okta, Google, OneLogin, AD FS, Entra), replayed at their issue time.

Each folder under tests/interop/real/ holds published test data of other SAML projects with a provenance.yaml
(repository, path, commit, licence, and the clock, ACS, audience and request ID its first users checked it
with). Nothing here was signed by the broker's own code: these are the shapes real users' logins arrive in.
Every document must pass the broker's whole validation and map to the right person with the IdP's preset.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from lxml import etree

from broker.claims.presets import claim_names_for, map_claims
from broker.errors import SamlRejected
from broker.keys import load_certificate_text
from broker.model import Claims, Identity
from broker.saml.metadata import MetadataError, UpstreamIdp, parse_idp_metadata
from broker.saml.response import Expectations, read_attributes, validate_response
from broker.saml.xml import BINDING_POST, BINDING_REDIRECT, SAML, parse_untrusted, qname
from broker.saml.xmldsig import SignatureRejected, verify_enveloped

REAL = Path(__file__).parent / "real"
SKEW = 180


def provenance(vendor: str) -> dict:
    return yaml.safe_load((REAL / vendor / "provenance.yaml").read_text())


def at(instant: str) -> datetime:
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(UTC)


def b64_file(vendor: str, name: str) -> str:
    return "".join((REAL / vendor / name).read_text().split())


def b64_of(vendor: str, name: str) -> str:
    return base64.b64encode((REAL / vendor / name).read_bytes()).decode("ascii")


def inline_upstream(entity_id: str, vendor: str, cert_file: str) -> UpstreamIdp:
    cert = load_certificate_text((REAL / vendor / cert_file).read_text())
    return UpstreamIdp(entity_id, "https://idp.invalid/sso", (cert,))


def expectations(
    meta: dict, upstream: UpstreamIdp, *, request_id: str | None = "", **changes
) -> Expectations:
    values = {
        "upstream_name": "real",
        "upstream": upstream,
        "sp_entity_id": meta["audience"],
        "acs_url": meta["acs_url"],
        "request_id": meta["request_id"] if request_id == "" else request_id,
        "now": at(meta["checked_at"]),
        "skew": timedelta(seconds=SKEW),
        "max_bytes": 256 * 1024,
    }
    return Expectations(**{**values, **changes})


def mapped(identity: Identity, preset: str) -> Claims:
    return map_claims(identity, claim_names_for(preset, {}))


def person(claims: Claims) -> tuple[str, str, str, tuple[str, ...]]:
    return claims.email, claims.first_name, claims.last_name, claims.groups


# --- Okta: both signed, InclusiveNamespaces PrefixList="xs" ------------------------------------------------


def test_real_okta_response_with_prefix_list_verifies_and_maps():
    meta = provenance("okta")
    document = (REAL / "okta" / "response.xml").read_bytes()
    assert b'PrefixList="xs"' in document and document.count(b"<ds:Signature ") == 2
    upstream = inline_upstream(meta["entity_id"], "okta", "signing.pem")
    result = validate_response(b64_of("okta", "response.xml"), expectations(meta, upstream))
    assert result.identity.name_id == "russellhaering"
    # Okta sent user.login as "username" (an email), no email attribute and a non-email NameID.
    assert person(mapped(result.identity, "okta")) == ("russell.haering@scaleft.com", "", "", ())
    assert result.expired_certificate is None


def test_real_okta_response_refused_when_one_byte_of_the_signed_assertion_changes():
    meta = provenance("okta")
    document = (REAL / "okta" / "response.xml").read_bytes().replace(b"russellhaering<", b"russellhaerinG<")
    upstream = inline_upstream(meta["entity_id"], "okta", "signing.pem")
    with pytest.raises(SamlRejected) as refused:
        validate_response(base64.b64encode(document).decode(), expectations(meta, upstream))
    assert refused.value.check == "signature"


def test_real_okta_prefix_list_changed_breaks_the_signature():
    """The PrefixList is inside SignedInfo: editing it must not verify (it cannot open a digest bypass)."""
    meta = provenance("okta")
    document = (
        (REAL / "okta" / "response.xml").read_bytes().replace(b'PrefixList="xs"', b'PrefixList="xs saml2"')
    )
    upstream = inline_upstream(meta["entity_id"], "okta", "signing.pem")
    with pytest.raises(SamlRejected, match="does not verify"):
        validate_response(base64.b64encode(document).decode(), expectations(meta, upstream))


def test_real_okta_response_after_its_certificate_expired_is_accepted_but_reported():
    """Okta's certificate ended 2026-02-09: verified at a later date, the signature is accepted and flagged
    (metadata is the trust anchor), and refused when the upstream enforces certificate expiry."""
    meta = provenance("okta")
    upstream = inline_upstream(meta["entity_id"], "okta", "signing.pem")
    cert = upstream.certificates[0]
    later = datetime(2026, 6, 1, tzinfo=UTC)
    assert cert.not_valid_after_utc < later
    verified = verify_enveloped(
        parse_untrusted((REAL / "okta" / "response.xml").read_bytes()), [cert], now=later
    )
    assert verified.certificate_expired
    with pytest.raises(SignatureRejected, match="expired on 2026-02-09"):
        verify_enveloped(
            parse_untrusted((REAL / "okta" / "response.xml").read_bytes()),
            [cert],
            now=later,
            enforce_certificate_expiry=True,
        )


# --- Google: Response signed only, POST-only metadata -------------------------------------------------------


def test_real_google_metadata_offers_only_http_post_and_the_response_maps():
    meta = provenance("google")
    upstream = parse_idp_metadata((REAL / "google" / "metadata.xml").read_bytes())
    assert upstream.sso_binding == BINDING_POST
    assert upstream.sso_url == "https://accounts.google.com/o/saml2/idp?idpid=C02dfl1r1"
    result = validate_response(b64_file("google", "response.b64"), expectations(meta, upstream))
    assert result.identity.issuer == "https://accounts.google.com/o/saml2?idpid=C02dfl1r1"
    assert person(mapped(result.identity, "google")) == ("ross@octolabs.io", "Ross", "Kinder", ())


def test_real_google_response_for_another_request_is_refused():
    meta = provenance("google")
    upstream = parse_idp_metadata((REAL / "google" / "metadata.xml").read_bytes())
    with pytest.raises(SamlRejected) as refused:
        validate_response(
            b64_file("google", "response.b64"), expectations(meta, upstream, request_id="_other")
        )
    assert refused.value.check == "in_response_to"


# --- OneLogin: RSA-SHA1, allowed per upstream ----------------------------------------------------------------


def test_real_onelogin_sha1_response_is_refused_naming_the_setting_then_accepted_when_allowed():
    meta = provenance("onelogin")
    upstream = parse_idp_metadata((REAL / "onelogin" / "metadata.xml").read_bytes())
    assert upstream.sso_binding == BINDING_POST
    with pytest.raises(SamlRejected) as refused:
        validate_response(b64_file("onelogin", "response.b64"), expectations(meta, upstream))
    assert "upstreams.real.allow_sha1" in refused.value.reason
    assert "SignatureConfiguration" not in refused.value.reason
    result = validate_response(
        b64_file("onelogin", "response.b64"), expectations(meta, upstream, allow_sha1=True)
    )
    # OneLogin's own parameter names; memberOf was sent empty, so no groups.
    assert result.identity.attributes["memberOf"] == ("",)
    assert person(mapped(result.identity, "onelogin")) == ("ross@kndr.org", "Ross", "Kinder", ())


def test_real_onelogin_unsolicited_response_is_accepted_without_in_response_to():
    meta = provenance("onelogin")["unsolicited"]
    upstream = inline_upstream(meta["entity_id"], "onelogin", "unsolicited_signing.pem")
    exp = expectations({**meta, "request_id": None}, upstream, request_id=None, allow_sha1=True)
    result = validate_response(b64_of("onelogin", "unsolicited_sha1_response.xml"), exp)
    assert person(mapped(result.identity, "onelogin")) == ("arun@launchdarkly.com", "", "", ())


# --- AD FS: default-namespace Assertion, unprefixed KeyInfo --------------------------------------------------


def test_real_adfs_response_verifies_and_maps_with_the_adfs_preset():
    meta = provenance("adfs")
    upstream = inline_upstream(meta["entity_id"], "adfs", "signing.pem")
    result = validate_response(b64_file("adfs", "response.b64"), expectations(meta, upstream))
    assert person(mapped(result.identity, "adfs")) == ("paul@spstest2.com", "paul", "fraley", ())


def test_real_adfs_response_replayed_after_the_certificate_expired_is_flagged():
    """Signed 2017-09-21 with a certificate that ended 2017-11-02: accepted past that date, and reported."""
    meta = provenance("adfs")
    upstream = inline_upstream(meta["entity_id"], "adfs", "signing.pem")
    document = parse_untrusted(base64.b64decode(b64_file("adfs", "response.b64")))
    assertion = document.find(qname(SAML, "Assertion"))
    later = datetime(2018, 1, 1, tzinfo=UTC)
    assert verify_enveloped(assertion, upstream.certificates, now=later).certificate_expired


def test_real_adfs_federation_metadata_with_ws_federation_sections_is_read():
    upstream = parse_idp_metadata((REAL / "adfs" / "metadata_v4.xml").read_bytes())
    assert upstream.entity_id == "http://fs.msidlab11.com/adfs/services/trust"
    assert upstream.sso_binding == BINDING_REDIRECT
    assert upstream.sso_url == "https://fs.msidlab11.com/adfs/ls/"
    # only the IDPSSODescriptor's signing key, not the WS-Fed RoleDescriptors' encryption keys
    assert len(upstream.certificates) == 1


# --- Entra: signed assertion, tenant metadata with several certificates and WS-Fed sections -----------------


def entra_assertion() -> etree._Element:
    wresult = parse_untrusted((REAL / "entra" / "wsfed_wresult.xml").read_bytes())
    return next(wresult.iter(qname(SAML, "Assertion")))


def test_real_entra_tenant_metadata_keeps_every_signing_certificate():
    upstream = parse_idp_metadata((REAL / "entra" / "metadata_tenant.xml").read_bytes())
    assert upstream.entity_id == "https://sts.windows.net/268da1a1-9db4-48b9-b1fe-683250ba90cc/"
    assert upstream.sso_binding == BINDING_REDIRECT
    assert upstream.sso_url.endswith("/268da1a1-9db4-48b9-b1fe-683250ba90cc/saml2")
    assert len(upstream.certificates) == 3


def test_real_entra_assertion_verifies_with_the_metadata_certificates_and_maps():
    upstream = parse_idp_metadata((REAL / "entra" / "metadata_tenant.xml").read_bytes())
    now = at(provenance("entra")["checked_at"])
    # Listed last here: any certificate in the metadata may sign (rollover), whatever its position.
    verified = verify_enveloped(entra_assertion(), tuple(reversed(upstream.certificates)), now=now)
    assert verified.certificate == upstream.certificates[0]
    assertion = verified.element
    identity = Identity(
        upstream="entra",
        issuer=assertion.findtext(qname(SAML, "Issuer")),
        assertion_id=assertion.get("ID"),
        name_id=assertion.findtext(f"{qname(SAML, 'Subject')}/{qname(SAML, 'NameID')}"),
        name_id_format=None,
        attributes=read_attributes(assertion),
    )
    claims = mapped(identity, "entra")
    # No emailaddress claim (a cloud-only account): the UPN in the name claim is the email.
    assert person(claims) == ("user1@cyrano.onmicrosoft.com", "User", "1", ())
    assert claims.object_id == "d1ad9ce7-b322-4221-ab74-1e1011e1bbcb"


def test_real_entra_assertion_refused_without_its_certificate():
    upstream = parse_idp_metadata((REAL / "entra" / "metadata_tenant.xml").read_bytes())
    now = at(provenance("entra")["checked_at"])
    with pytest.raises(SignatureRejected, match="does not verify"):
        verify_enveloped(entra_assertion(), upstream.certificates[1:], now=now)


def test_real_entra_tenant_independent_metadata_is_refused_with_what_to_use_instead():
    document = (REAL / "entra" / "metadata_tenant_independent.xml").read_bytes()
    assert b'entityID="https://sts.windows.net/{tenantid}/"' in document
    with pytest.raises(MetadataError, match="App Federation Metadata URL"):
        parse_idp_metadata(document)
