"""The demo shows the learner pages' features over real HTTP: a branded academy, German sales pages for a browser
that names no language we have, and a German learner refused in German."""

from __future__ import annotations

import requests

from tests.demo_servers import submit_form


def test_the_academy_is_branded_with_its_logo_colour_and_support_team(demo):
    page = requests.get(f"{demo.urls.broker}/login/academy?idp=choose", timeout=10)
    assert page.status_code == 200
    assert ":root { --accent: #0b5a2a; }" in page.text
    assert '<img src="/branding/academy/logo" alt="Contoso Academy">' in page.text
    assert "mailto:academy-help@contoso.example" in page.text
    logo = requests.get(f"{demo.urls.broker}/branding/academy/logo", timeout=10)
    assert logo.status_code == 200 and logo.headers["Content-Type"].startswith("image/svg+xml")


def test_sales_pages_are_german_by_default_and_a_german_learner_is_refused_in_german(demo):
    notice = requests.get(
        f"{demo.urls.broker}/signed-out/sales", headers={"Accept-Language": "nl"}, timeout=10
    )
    assert notice.headers["Content-Language"] == "de"
    assert "Sie haben sich von Vertriebstraining abgemeldet." in notice.text
    session = requests.Session()
    session.headers["Accept-Language"] = "de-DE,de;q=0.9"
    idp_page = session.get(f"{demo.urls.broker}/login/sales")
    refused = submit_form(session, submit_form(session, idp_page, email="priya.shah@contoso.example"))
    assert refused.status_code == 403
    assert "Sie haben noch keinen Zugang zu diesem Portal" in refused.text
    assert "Ihr Konto hat hier noch kein Lernportal." in refused.text and "Neu beginnen" in refused.text
