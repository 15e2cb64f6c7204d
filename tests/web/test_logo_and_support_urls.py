"""A logo URL puts only a clean origin into the page's CSP (no `;`, `,` or user:password@ in the header), and a
learner is sent to a support page only over https; a bad URL is a config error naming file, field and reason."""

from __future__ import annotations

import pytest
import yaml

from broker.config import load_config
from broker.errors import ConfigError
from tests.harness import Harness, base_config


def load_with(tmp_path, keys, **overrides: object):
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(base_config(keys, **overrides)))
    return path, lambda: load_config(path)


@pytest.mark.parametrize("url, reason", [
    ("https://cdn.example;report-uri/logo.png", "the host may hold only letters, digits, '.' and '-'"),
    ("https://cdn.example,x/logo.png", "the host may hold only letters, digits, '.' and '-'"),
    ("https://u:p@cdn.example/logo.png", "must not contain a user name or password"),
    ("https://cdn.example:99999/logo.png", "the host may hold only letters, digits, '.' and '-', then an optional :port (1-65535)"),
    ("https://cdn_example/logo.png", "the host may hold only letters"),
    ("https:///logo.png", "the host may hold only letters"),
    ("http://cdn.example/logo.png", "must be an absolute https:// URL"),
    ("https://cdn.example/lo go.png", "must not contain spaces"),
])  # fmt: skip
def test_a_logo_url_that_could_bend_the_csp_header_is_refused(tmp_path, keys, url, reason):
    path, load = load_with(tmp_path, keys, portals__academy__branding={"logo_url": url})
    with pytest.raises(ConfigError) as info:
        load()
    assert f"{path}: portals.academy.branding.logo_url: {reason}" in str(info.value)


def test_the_csp_origin_is_built_from_host_and_port(keys):
    harness = Harness(keys, config_overrides={
        "portals__academy__branding": {"logo_url": "https://CDN.Contoso.example:8443/a,b;c/logo.png?v=1"}})  # fmt: skip
    csp = harness.client.get("/signed-out/academy").headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.contoso.example:8443;" in csp
    assert "a,b" not in csp and csp.count(";") == harness.client.get("/signed-out/sales").headers[
        "Content-Security-Policy"
    ].count(";")


@pytest.mark.parametrize("url", ["http://help.contoso.example/", "ftp://help.contoso.example/"])
def test_the_support_contact_url_must_be_https(tmp_path, keys, url):
    path, load = load_with(tmp_path, keys, learner_pages__support={"name": "IT", "url": url})
    with pytest.raises(ConfigError) as info:
        load()
    assert f"{path}: learner_pages.support.url: must" in str(info.value) and "https" in str(info.value)


def test_a_loopback_support_page_may_use_http(keys):
    harness = Harness(keys, config_overrides={
        "learner_pages__support": {"name": "IT", "url": "http://127.0.0.1:8470/help"}})  # fmt: skip
    assert "http://127.0.0.1:8470/help" in harness.client.get("/signed-out/academy").get_data(as_text=True)
