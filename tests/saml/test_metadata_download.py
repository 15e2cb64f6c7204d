"""Metadata over HTTPS only (plain http to loopback for the demo and tests), redirects checked one by one: never
to cleartext, never to another host unless the metadata's signature is checked. LearnUpon's API likewise."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, Response, redirect
from lxml import etree

from broker.config import config_from_dict
from broker.demo.webserver import BackgroundServer
from broker.errors import ConfigError
from broker.saml.metadata import MetadataError, idp_metadata
from broker.saml.metadata_download import redirect_problem
from broker.saml.upstream_metadata import MetadataRefreshSettings, fetch_upstream
from broker.saml.xmldsig import sign_enveloped, signature_placeholder
from tests.harness import IDP_ENTITY, IDP_SSO, base_config


def metadata_site(body: bytes, **redirects: str) -> BackgroundServer:
    app = Flask("metadata-site")
    app.get("/metadata.xml")(lambda: Response(body, mimetype="application/samlmetadata+xml"))
    for name, target in redirects.items():
        app.add_url_rule(f"/{name}", name, lambda target=target: redirect(target, 302))
    return BackgroundServer(app)


def signed_metadata(keys) -> bytes:
    root = etree.fromstring(idp_metadata(IDP_ENTITY, IDP_SSO, [keys.idp]))
    root.set("ID", "_md")
    root.insert(0, signature_placeholder())
    return etree.tostring(sign_enveloped(root, keys.idp))


def test_a_same_host_redirect_is_followed(keys):
    with metadata_site(idp_metadata(IDP_ENTITY, IDP_SSO, [keys.idp]), moved="/metadata.xml") as site:
        assert fetch_upstream(site.url + "/moved", MetadataRefreshSettings()).entity_id == IDP_ENTITY


def test_a_redirect_to_another_host_is_refused_without_a_signature_check(keys):
    # the attacker's copy lists their own certificate; the configured host redirects there
    with metadata_site(idp_metadata(IDP_ENTITY, IDP_SSO, [keys.attacker])) as evil:
        other_host = evil.url.replace("127.0.0.1", "localhost") + "/metadata.xml"
        with metadata_site(b"", away=other_host) as site:
            with pytest.raises(MetadataError, match=r"redirected to another host \(localhost:\d+\)"):
                fetch_upstream(site.url + "/away", MetadataRefreshSettings())


def test_a_redirect_to_another_host_is_followed_when_the_signature_is_checked(keys):
    with metadata_site(signed_metadata(keys)) as cdn:
        other_host = cdn.url.replace("127.0.0.1", "localhost") + "/metadata.xml"
        with metadata_site(b"", away=other_host) as site:
            settings = MetadataRefreshSettings(signing_certificate=Path(keys.path("idp", "crt")))
            assert fetch_upstream(site.url + "/away", settings).certificates == (keys.idp.certificate,)


def test_redirects_to_cleartext_or_in_a_loop_are_refused(keys):
    assert "must use https" in redirect_problem(
        "https://login.example.com/md", "http://login.example.com/md", signature_checked=True
    )
    assert (
        redirect_problem("https://a.example/md", "https://a.example/other", signature_checked=False) is None
    )
    with metadata_site(b"", loop="/loop") as site:
        with pytest.raises(MetadataError, match="more than 5 redirects"):
            fetch_upstream(site.url + "/loop", MetadataRefreshSettings())


def test_cleartext_metadata_url_to_another_machine_is_refused(keys):
    with pytest.raises(MetadataError, match="must use https"):
        fetch_upstream("http://idp.example.com/metadata.xml", MetadataRefreshSettings())
    data = base_config(
        keys, upstreams__entra={"preset": "entra", "metadata_url": "http://idp.example.com/md.xml"}
    )
    with pytest.raises(ConfigError, match=r"upstreams\.entra\.metadata_url: must use https"):
        config_from_dict(data)
    loopback = base_config(
        keys, upstreams__entra={"preset": "entra", "metadata_url": "http://127.0.0.1:9/md.xml"}
    )
    assert config_from_dict(loopback).upstreams["entra"].metadata_url.startswith("http://127.0.0.1")


def test_learnupon_base_url_must_be_https_except_loopback(keys):
    settings = {"enabled": True, "username_env": "U", "password_env": "P"}
    cleartext = base_config(
        keys, portals__academy__provisioning={**settings, "base_url": "http://academy.learnupon.com/api/v1/"}
    )
    with pytest.raises(ConfigError, match=r"portals\.academy\.provisioning\.base_url: must use https"):
        config_from_dict(cleartext)
    local = base_config(
        keys, portals__academy__provisioning={**settings, "base_url": "http://127.0.0.1:8472/academy/api/v1/"}
    )
    assert config_from_dict(local).portals["academy"].provisioning.base_url
