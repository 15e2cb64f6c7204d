"""Metadata for the upstream IdP and for LearnUpon admins; the health endpoint."""

from __future__ import annotations

from lxml import etree

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


def test_unknown_portal_metadata_is_404(keys):
    assert Harness(keys).client.get("/portals/none/metadata").status_code == 404


def test_healthz(keys):
    reply = Harness(keys).client.get("/healthz")
    assert reply.status_code == 200 and reply.json == {"status": "ok"}


def test_unknown_url_and_wrong_method_are_pages_not_500(keys):
    client = Harness(keys).client
    assert client.get("/nothing-here").status_code == 404
    assert client.get("/saml/acs").status_code == 405
