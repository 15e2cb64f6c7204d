"""Metadata for the upstream IdP and for LearnUpon admins; the health endpoint."""

from __future__ import annotations

from lxml import etree, html

from broker.saml.metadata import parse_idp_metadata
from broker.saml.xml import MD, qname
from tests.harness import Harness


def test_sp_metadata_registers_the_broker_acs(keys):
    harness = Harness(keys)
    reply = harness.client.get("/saml/metadata")
    assert reply.status_code == 200
    assert reply.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(reply.data)
    assert root.get("entityID") == "https://broker.test/saml/metadata"
    acs = root.find(f"{qname(MD, 'SPSSODescriptor')}/{qname(MD, 'AssertionConsumerService')}")
    assert acs.get("Location") == "https://broker.test/saml/acs"


def test_portal_metadata_xml_lists_the_portal_certificate_and_fingerprints(keys):
    harness = Harness(keys)
    reply = harness.client.get("/portals/sales/metadata?format=xml")
    assert reply.status_code == 200
    idp = parse_idp_metadata(reply.data)
    assert idp.entity_id == "https://broker.test/idp"
    assert idp.sso_url == "https://broker.test/login/sales"
    assert idp.certificates == (keys.portal.certificate,)
    assert reply.headers["X-Certificate-SHA1-Fingerprint"] == keys.portal.sha1_fingerprint
    assert reply.headers["X-Certificate-SHA256-Fingerprint"] == keys.portal.sha256_fingerprint


def test_portal_setup_page_shows_both_fingerprints_for_the_learnupon_admin(keys):
    harness = Harness(keys)
    reply = harness.client.get("/portals/academy/metadata", headers={"Accept": "text/html"})
    body = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert keys.broker.sha1_fingerprint in body and keys.broker.sha256_fingerprint in body
    assert "https://broker.test/login/academy" in body
    assert len(keys.broker.sha1_fingerprint.split(":")) == 20


LEARNUPON_FIELDS = [
    "Enabled", "Version", "IDP SSO Target URL", "Sign out URL", "Unauthorized URL", "Disable portal login page",
    "Skip conditions", "SAML Token POST param name", "Name Identifier Format", "First Name Identifier Format",
    "Last Name Identifier Format", "Group attribute name", "Certificate fingerprint (SHA-1)",
    "Certificate fingerprint (SHA-256)",
]  # fmt: skip


def setup_table(harness: Harness, portal: str) -> dict[str, str]:
    reply = harness.client.get(f"/portals/{portal}/metadata", headers={"Accept": "text/html"})
    assert reply.status_code == 200
    page = html.fromstring(reply.data)
    rows = page.xpath('//table[@id="learnupon-fields"]/tr[td]')
    return {row.findtext("th"): row.find("td/code").text_content() for row in rows}


def test_setup_page_lists_every_learnupon_saml_field_with_the_value_to_paste(keys):
    harness = Harness(keys, config_overrides={
        "portals__sales__attributes": {"first_name": "FirstName", "last_name": "LastName", "groups": "Departments"},
    })  # fmt: skip

    sales = setup_table(harness, "sales")
    academy = setup_table(harness, "academy")

    assert list(sales) == LEARNUPON_FIELDS
    assert sales["Enabled"] == "Yes" and sales["Version"] == "2.0"
    assert sales["IDP SSO Target URL"] == "https://broker.test/login/sales"
    assert sales["Sign out URL"] == "https://broker.test/signed-out/sales"
    assert sales["Unauthorized URL"] == "https://broker.test/unauthorized/sales"
    assert sales["Disable portal login page"] == "Yes" and sales["Skip conditions"] == "No"
    assert sales["SAML Token POST param name"] == "SAMLResponse"
    assert sales["Name Identifier Format"] == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert (sales["First Name Identifier Format"], sales["Last Name Identifier Format"]) == (
        "FirstName",
        "LastName",
    )
    assert sales["Group attribute name"] == "Departments"
    assert sales["Certificate fingerprint (SHA-1)"] == keys.portal.sha1_fingerprint
    assert sales["Certificate fingerprint (SHA-256)"] == keys.portal.sha256_fingerprint
    assert (
        academy["First Name Identifier Format"]
        == "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
    )
    assert academy["Certificate fingerprint (SHA-256)"] == keys.broker.sha256_fingerprint


def test_the_sign_out_and_unauthorized_urls_answer_with_a_way_back_in(keys):
    harness = Harness(keys)
    for path in ("/signed-out/academy", "/unauthorized/academy"):
        reply = harness.client.get(path)
        assert reply.status_code == 200
        page = html.fromstring(reply.data)
        assert page.xpath("//a/@href") == ["/login/academy"]
        assert "Contoso Academy" in page.text_content()
    assert harness.client.get("/signed-out/nowhere").status_code == 404


def test_unknown_portal_metadata_is_404(keys):
    assert Harness(keys).client.get("/portals/none/metadata").status_code == 404


def test_healthz(keys):
    reply = Harness(keys).client.get("/healthz")
    assert reply.status_code == 200 and reply.json == {"status": "ok"}


def test_unknown_url_and_wrong_method_are_pages_not_500(keys):
    client = Harness(keys).client
    assert client.get("/nothing-here").status_code == 404
    assert client.get("/saml/acs").status_code == 405
