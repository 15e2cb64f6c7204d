"""A portal's learner pages in its branding (logo, colour, title) with the CSP intact, and WCAG contrast maths."""

from __future__ import annotations

import re

import pytest

from broker.config import config_from_dict
from broker.errors import ConfigError
from broker.tools.contrast import contrast_ratio, relative_luminance
from tests.harness import Harness, base_config

LOGO = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


@pytest.mark.parametrize("first, second, ratio", [
    ("#000000", "#ffffff", 21.0), ("#ffffff", "#ffffff", 1.0), ("#767676", "#ffffff", 4.54), ("#777777", "#ffffff", 4.48),
    ("#1f5fbf", "#ffffff", 6.09), ("#ff0000", "#ffffff", 4.0),
])  # fmt: skip
def test_contrast_ratio_is_wcags(first, second, ratio):
    assert round(contrast_ratio(first, second), 2) == ratio
    assert contrast_ratio(first, second) == contrast_ratio(second, first)


def test_relative_luminance_ends():
    assert relative_luminance("#000000") == 0 and relative_luminance("#ffffff") == pytest.approx(1)


def test_branded_page_has_colour_title_and_logo_file_within_the_csp(keys, tmp_path):
    logo = tmp_path / "logo.svg"
    logo.write_bytes(LOGO)
    harness = Harness(keys, config_overrides={"portals__academy__branding": {
        "primary_color": "#0B5A2A", "page_title": "Contoso Learning", "logo_file": str(logo)}})  # fmt: skip
    reply = harness.client.get("/login/academy?target=//x")
    body = reply.get_data(as_text=True)
    nonce = re.search(r"style-src 'nonce-([^']+)'", reply.headers["Content-Security-Policy"])[1]
    assert f'<style nonce="{nonce}">' in body and ":root { --accent: #0b5a2a; }" in body
    assert ' style="' not in body  # no inline style attribute (the CSP would block it)
    assert "– Contoso Learning</title>" in body
    assert '<img src="/branding/academy/logo" alt="Contoso Learning">' in body
    image = harness.client.get("/branding/academy/logo")
    assert image.status_code == 200 and image.mimetype == "image/svg+xml" and image.data == LOGO
    assert harness.client.get("/branding/sales/logo").status_code == 404  # sales has no logo


def test_a_logo_url_is_allowed_by_that_pages_csp_only(keys):
    harness = Harness(keys, config_overrides={
        "portals__academy__branding": {"logo_url": "https://cdn.contoso.example/logo.png"}})  # fmt: skip
    branded = harness.client.get("/signed-out/academy")
    assert "img-src 'self' data: https://cdn.contoso.example;" in branded.headers["Content-Security-Policy"]
    plain = harness.client.get("/signed-out/sales")
    assert "cdn.contoso.example" not in plain.headers["Content-Security-Policy"]


@pytest.mark.parametrize("branding, message", [
    ({"primary_color": "green"}, "must be a colour written #rrggbb"),
    ({"primary_color": "#123;}body{x"}, "must be a colour written #rrggbb"),
    ({"logo_url": "http://cdn.example/logo.png"}, "must be an absolute https:// URL"),
    ({"logo_file": "missing.png"}, "file not found"),
    ({"logo_file": "logo.exe"}, "must be an image file"),
])  # fmt: skip
def test_bad_branding_is_refused_naming_the_field(keys, branding, message):
    with pytest.raises(ConfigError, match=rf"portals\.academy\.branding\.\w+.*{re.escape(message)}"):
        config_from_dict(base_config(keys, portals__academy__branding=branding), "broker.yaml")


def test_support_contact_needs_somewhere_to_go(keys):
    with pytest.raises(ConfigError, match=r"learner_pages\.support.*give email, url or both"):
        config_from_dict(base_config(keys, learner_pages__support={"name": "IT"}), "broker.yaml")
