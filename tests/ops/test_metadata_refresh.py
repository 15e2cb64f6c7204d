"""Upstream metadata from a URL: fetched from a real loopback HTTP server whose content the test changes."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask, Response
from lxml import etree

from broker.demo.webserver import BackgroundServer
from broker.keys import KeyPair
from broker.saml.metadata import MetadataError, idp_metadata
from broker.saml.upstream_metadata import (
    MetadataRefresher,
    MetadataRefreshSettings,
    RefreshTarget,
    fetch_upstream,
    parse_duration,
    refresh_targets,
)
from broker.saml.xml import MD, format_instant, qname
from broker.saml.xmldsig import sign_enveloped, signature_placeholder, verify_enveloped
from tests.harness import IDP_ENTITY, IDP_SSO, Harness

BOM = b"\xef\xbb\xbf"


class MetadataSite:
    """A loopback IdP metadata endpoint; tests set `body`, `status`, `delay` or `stream` between refreshes."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.delay = 0.0
        self.stream = False  # chunked, no Content-Length
        self.hits = 0
        app = Flask(__name__)

        @app.get("/federationmetadata.xml")
        def metadata():
            self.hits += 1
            if self.delay:
                time.sleep(self.delay)
            if self.stream:
                body = self.body
                return Response((body[i : i + 1024] for i in range(0, len(body), 1024)), self.status)
            return Response(self.body, self.status, mimetype="application/samlmetadata+xml")

        self.server = BackgroundServer(app)
        self.url = self.server.url + "/federationmetadata.xml"


@pytest.fixture
def site():
    site = MetadataSite()
    with site.server:
        yield site


def metadata(
    *certs: KeyPair,
    entity_id: str = IDP_ENTITY,
    valid_until: datetime | None = None,
    cache_duration: str | None = None,
) -> bytes:
    root = etree.fromstring(idp_metadata(entity_id, IDP_SSO, list(certs)))
    if valid_until is not None:
        root.set("validUntil", format_instant(valid_until))
    if cache_duration is not None:
        root.set("cacheDuration", cache_duration)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def signed(document: bytes, key: KeyPair) -> bytes:
    """Signed the way Entra signs its federation metadata: enveloped, over the EntityDescriptor's ID."""
    root = etree.fromstring(document)
    root.set("ID", "_federation-metadata")
    root.insert(0, signature_placeholder())
    return etree.tostring(sign_enveloped(root, key), xml_declaration=True, encoding="UTF-8")


def refresher_for(site: MetadataSite, upstreams: dict, **settings: object) -> MetadataRefresher:
    target = RefreshTarget("entra", site.url, MetadataRefreshSettings(**settings))
    return MetadataRefresher(upstreams, [target])


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# First fetch


def test_first_fetch_reads_entity_sso_url_and_every_signing_certificate(site, keys):
    site.body = metadata(keys.idp, keys.idp_next)
    upstream = fetch_upstream(site.url, MetadataRefreshSettings())
    assert upstream.entity_id == IDP_ENTITY
    assert upstream.sso_url == IDP_SSO
    assert upstream.certificates == (keys.idp.certificate, keys.idp_next.certificate)


def test_metadata_starting_with_a_utf8_bom_is_read(site, keys):
    site.body = BOM + metadata(keys.idp)
    assert fetch_upstream(site.url, MetadataRefreshSettings()).certificates == (keys.idp.certificate,)


def test_signed_metadata_starting_with_a_bom_is_verified_and_read(site, keys):
    site.body = BOM + signed(metadata(keys.idp), keys.idp)
    settings = MetadataRefreshSettings(signing_certificate=Path(keys.path("idp", "crt")))
    assert fetch_upstream(site.url, settings).entity_id == IDP_ENTITY


def test_oversized_metadata_is_refused_by_content_length(site, keys):
    site.body = metadata(keys.idp) + b" " * 4096
    with pytest.raises(MetadataError, match="max_bytes"):
        fetch_upstream(site.url, MetadataRefreshSettings(max_bytes=2048))


def test_oversized_metadata_is_refused_while_streaming_without_content_length(site, keys):
    site.body = metadata(keys.idp) + b" " * 8192
    site.stream = True
    with pytest.raises(MetadataError, match="max_bytes"):
        fetch_upstream(site.url, MetadataRefreshSettings(max_bytes=2048))


def test_configured_entity_id_picks_one_entity_and_a_mismatch_is_refused(site, keys):
    site.body = metadata(keys.idp)
    assert fetch_upstream(site.url, MetadataRefreshSettings(), entity_id=IDP_ENTITY).entity_id == IDP_ENTITY
    with pytest.raises(MetadataError, match="not the configured"):
        fetch_upstream(site.url, MetadataRefreshSettings(), entity_id="https://sts.windows.net/other/")


def test_entities_descriptor_is_narrowed_to_the_configured_entity(site, keys):
    group = etree.Element(qname(MD, "EntitiesDescriptor"), nsmap={"md": MD})
    group.append(etree.fromstring(metadata(keys.okta, entity_id="http://www.okta.com/exk1")))
    group.append(etree.fromstring(metadata(keys.idp)))
    site.body = etree.tostring(group)
    upstream = fetch_upstream(site.url, MetadataRefreshSettings(), entity_id=IDP_ENTITY)
    assert upstream.certificates == (keys.idp.certificate,)


# Signature on the metadata


@pytest.mark.parametrize(
    "defect", ["unsigned", "signed by another key", "changed after signing", "signature without ID"]
)
def test_metadata_signature_is_required_when_a_signing_certificate_is_configured(site, keys, defect):
    good = signed(metadata(keys.idp), keys.idp)
    site.body = {
        "unsigned": metadata(keys.idp),
        "signed by another key": signed(metadata(keys.idp), keys.attacker),
        "changed after signing": good.replace(IDP_SSO.encode(), b"https://evil.example/saml2"),
        "signature without ID": good.replace(b'ID="_federation-metadata"', b""),
    }[defect]
    settings = MetadataRefreshSettings(signing_certificate=Path(keys.path("idp", "crt")))
    with pytest.raises(MetadataError, match="signature"):
        fetch_upstream(site.url, settings)


def test_an_attacker_certificate_swapped_into_signed_metadata_is_refused(site, keys):
    """The usual attack on unsigned metadata: publish your own signing cert. The signature covers it."""
    document = signed(metadata(keys.idp), keys.idp)
    site.body = document.replace(keys.idp.cert_b64.encode(), keys.attacker.cert_b64.encode())
    settings = MetadataRefreshSettings(signing_certificate=Path(keys.path("idp", "crt")))
    with pytest.raises(MetadataError, match="signature"):
        fetch_upstream(site.url, settings)


# Refresh keeps the last good copy


@pytest.mark.parametrize("failure", ["HTTP 500", "timeout", "garbage", "bad signature", "expired", "entity"])
def test_failed_refresh_keeps_the_last_good_copy_and_the_status_says_why(site, keys, caplog, failure):
    site.body = signed(metadata(keys.idp), keys.idp)
    upstreams: dict = {}
    refresher = refresher_for(
        site, upstreams, signing_certificate=Path(keys.path("idp", "crt")), timeout_seconds=0.5
    )
    assert refresher.refresh_now("entra")
    good = upstreams["entra"]
    first = refresher.status()["entra"]

    if failure == "HTTP 500":
        site.status, expected = 500, "HTTP 500"
    elif failure == "timeout":
        site.delay, expected = 1.5, "cannot fetch"
    elif failure == "garbage":
        site.body, expected = b"SECRET-MARKER <html>not metadata", "not acceptable XML"
    elif failure == "bad signature":
        site.body, expected = signed(metadata(keys.attacker), keys.attacker), "signature"
    elif failure == "expired":
        past = datetime.now(UTC) - timedelta(minutes=1)
        site.body, expected = signed(metadata(keys.idp, valid_until=past), keys.idp), "expired"
    else:
        other = metadata(keys.idp, entity_id="https://sts.windows.net/someone-else/")
        site.body, expected = signed(other, keys.idp), "entity"

    with caplog.at_level(logging.WARNING, logger="broker"):
        assert refresher.refresh_now("entra") is False
    assert upstreams["entra"] is good
    status = refresher.status()["entra"]
    assert status.consecutive_failures == 1
    assert expected in status.last_failure_reason
    assert status.last_success == first.last_success and status.last_failure >= first.last_success
    assert status.next_refresh - status.last_failure <= timedelta(seconds=300)  # retried soon, not in an hour
    logged = warnings(caplog)
    assert len(logged) == 1 and "entra" in logged[0] and expected in logged[0]
    assert "keeping the copy" in logged[0]
    assert "SECRET-MARKER" not in caplog.text and "X509Certificate" not in caplog.text

    site.status, site.delay, site.body = 200, 0.0, signed(metadata(keys.idp), keys.idp)
    assert refresher.refresh_now("entra")
    assert refresher.status()["entra"].consecutive_failures == 0


def test_consecutive_failures_count_up_and_back_off(site, keys):
    site.body = metadata(keys.idp)
    upstreams: dict = {}
    refresher = refresher_for(site, upstreams, retry_seconds=100, interval_seconds=3600)
    refresher.refresh_now("entra")
    site.status = 503
    delays = []
    for _ in range(3):
        refresher.refresh_now("entra")
        status = refresher.status()["entra"]
        delays.append((status.next_refresh - status.last_failure).total_seconds())
    assert refresher.status()["entra"].consecutive_failures == 3
    assert delays == [100, 200, 400]


# Certificate rollover


def test_certificate_rollover_mid_run_is_picked_up_and_a_response_signed_with_the_new_key_verifies(
    site, keys
):
    """Entra publishes old+new certs before switching, then only the new one."""

    def assertion_signed_by(key: KeyPair) -> etree._Element:
        element = etree.Element("Assertion", ID="_a1")
        etree.SubElement(element, "Issuer").text = IDP_ENTITY
        element.insert(1, signature_placeholder())
        return sign_enveloped(element, key)

    site.body = metadata(keys.idp)
    upstreams: dict = {}
    refresher = refresher_for(site, upstreams)
    refresher.refresh_now("entra")
    with pytest.raises(ValueError, match="does not verify"):
        verify_enveloped(assertion_signed_by(keys.idp_next), upstreams["entra"].certificates)

    site.body = metadata(keys.idp, keys.idp_next)
    assert refresher.refresh_now("entra")
    for key in (keys.idp, keys.idp_next):
        verify_enveloped(assertion_signed_by(key), upstreams["entra"].certificates)

    site.body = metadata(keys.idp_next)
    assert refresher.refresh_now("entra")
    verify_enveloped(assertion_signed_by(keys.idp_next), upstreams["entra"].certificates)
    with pytest.raises(ValueError, match="does not verify"):
        verify_enveloped(assertion_signed_by(keys.idp), upstreams["entra"].certificates)
    assert refresher.status()["entra"].certificates == (keys.idp_next.sha256_fingerprint,)


def test_rollover_through_the_broker_acs_with_a_metadata_url_upstream(site, keys):
    site.body = metadata(keys.idp)
    harness = Harness(
        keys, config_overrides={"upstreams__entra": {"preset": "entra", "metadata_url": site.url}}
    )
    refresher = MetadataRefresher(harness.runtime.upstream_metadata, refresh_targets(harness.config))

    def login_signed_by(key: KeyPair):
        pending = harness.login()
        return harness.post(harness.encode(harness.document(harness.spec(pending), key)), pending.relay_state)

    assert login_signed_by(keys.idp_next).status_code == 400
    site.body = metadata(keys.idp, keys.idp_next)
    assert refresher.refresh_now("entra")
    assert login_signed_by(keys.idp).status_code == 200
    assert login_signed_by(keys.idp_next).status_code == 200
    site.body = metadata(keys.idp_next)
    assert refresher.refresh_now("entra")
    assert login_signed_by(keys.idp_next).status_code == 200
    assert login_signed_by(keys.idp).status_code == 400


def test_background_thread_picks_up_the_rollover_on_its_own(site, keys):
    site.body = metadata(keys.idp, cache_duration="PT0.1S")
    upstreams: dict = {}
    target = RefreshTarget("entra", site.url, MetadataRefreshSettings())
    refresher = MetadataRefresher(upstreams, [target], floor_seconds=0.1).start()
    try:
        deadline = time.monotonic() + 10
        while "entra" not in upstreams and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstreams["entra"].certificates == (keys.idp.certificate,)  # no copy at start: fetched at once
        site.body = metadata(keys.idp_next, cache_duration="PT0.1S")
        while upstreams["entra"].certificates != (keys.idp_next.certificate,) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert upstreams["entra"].certificates == (keys.idp_next.certificate,)
    finally:
        refresher.stop()
    hits = site.hits
    time.sleep(0.3)
    assert site.hits == hits, "stop() ends the refresh thread"


# Schedule


@pytest.mark.parametrize(
    ("cache_duration", "honour", "expected"),
    [
        (None, True, 3600),
        ("PT5M", True, 300),
        ("P1D", True, 3600),
        ("PT1S", True, 60),  # bounded below
        ("PT5M", False, 3600),
        ("not-a-duration", True, 3600),
    ],
)
def test_cache_duration_shortens_the_next_refresh(site, keys, cache_duration, honour, expected):
    site.body = metadata(keys.idp, cache_duration=cache_duration)
    refresher = refresher_for(site, {}, honour_cache_duration=honour)
    assert refresher.refresh_now("entra")
    status = refresher.status()["entra"]
    assert (status.next_refresh - status.last_success).total_seconds() == expected


def test_valid_until_soon_brings_the_next_refresh_forward(site, keys):
    valid_until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=20)
    site.body = metadata(keys.idp, valid_until=valid_until)
    refresher = refresher_for(site, {})
    refresher.refresh_now("entra")
    status = refresher.status()["entra"]
    assert status.valid_until == valid_until
    assert timedelta(minutes=9) < status.next_refresh - status.last_success <= timedelta(minutes=10)
    assert not status.expired(datetime.now(UTC))
    assert status.expired(valid_until)


def test_an_upstream_loaded_at_start_is_refreshed_after_the_interval(site, keys):
    site.body = metadata(keys.idp)
    upstreams = {"entra": fetch_upstream(site.url, MetadataRefreshSettings())}
    before = datetime.now(UTC)
    refresher = refresher_for(site, upstreams, interval_seconds=600)
    status = refresher.status()["entra"]
    assert status.certificates == (keys.idp.sha256_fingerprint,) and status.last_success is None
    assert status.next_refresh >= before + timedelta(seconds=600)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT1H", 3600), ("P1D", 86400), ("P1DT2H3M4S", 93784), ("PT0.5S", 0.5), ("P1Y", 365 * 86400)],
)
def test_xs_duration_values(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "-P1D", "P1H", "PTH"])
def test_malformed_xs_durations_are_none(text):
    assert parse_duration(text) is None


def test_refresh_settings_refuse_unknown_fields_and_too_short_intervals():
    with pytest.raises(ValueError, match="interval_seconds"):
        MetadataRefreshSettings(interval_seconds=10)
    with pytest.raises(ValueError, match="extra"):
        MetadataRefreshSettings.model_validate({"intervall_seconds": 600})
