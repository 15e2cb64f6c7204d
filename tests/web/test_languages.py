"""Learner pages in the learner's language: ?lang= over Accept-Language over the portal's default; catalogues
complete for every shipped language and compiled from their .po files; per-language texts from config."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import broker
from broker.config import config_from_dict
from broker.config.pages import LANGUAGES
from broker.errors import ConfigError
from tests.harness import Harness, base_config

TRANSLATIONS = Path(broker.__file__).parent / "translations"
ROOT = Path(broker.__file__).parents[1]


def test_german_browser_gets_german_pages_with_language_headers(keys):
    harness = Harness(keys)
    reply = harness.client.get("/no/such/page", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    body = reply.get_data(as_text=True)
    assert '<html lang="de">' in body
    assert "<h1>Wir finden diese Seite nicht</h1>" in body and "Neu beginnen" in body
    assert reply.headers["Content-Language"] == "de"
    assert "Accept-Language" in reply.headers["Vary"]


@pytest.mark.parametrize("accept, expected, title", [
    ("fr-CA,fr;q=0.9", "fr", "Nous ne trouvons pas cette page"),
    ("es-MX", "es", "No encontramos esta página"),
    ("pt-BR,pt;q=0.8", "pt-BR", "Não encontramos esta página"),
    ("ja", "ja", "このページが見つかりません"),
    ("en-GB", "en", "We can&#39;t find this page"),
    ("nl-NL", "en", "We can&#39;t find this page"),
])  # fmt: skip
def test_every_shipped_language_is_chosen_from_accept_language(keys, accept, expected, title):
    reply = Harness(keys).client.get("/nowhere", headers={"Accept-Language": accept})
    body = reply.get_data(as_text=True)
    assert f'<html lang="{expected}">' in body and f"<h1>{title}</h1>" in body
    assert reply.headers["Content-Language"] == expected


def test_explicit_lang_wins_over_accept_language_and_is_remembered(keys):
    harness = Harness(keys)
    reply = harness.client.get("/login/academy?lang=fr&target=//x", headers={"Accept-Language": "de"})
    assert '<html lang="fr">' in reply.get_data(as_text=True)
    assert "broker_lang=fr" in reply.headers["Set-Cookie"]
    later = harness.client.get("/nowhere", headers={"Accept-Language": "de"})  # e.g. back from the IdP
    assert '<html lang="fr">' in later.get_data(as_text=True)


def test_portal_default_language_applies_when_the_browser_names_none_we_have(keys):
    harness = Harness(keys, config_overrides={"portals__academy__default_language": "de"})
    page = harness.client.get("/login/academy?target=//x", headers={"Accept-Language": "nl"})
    assert '<html lang="de">' in page.get_data(as_text=True)
    english = harness.client.get("/login/academy?target=//x", headers={"Accept-Language": "en-US"})
    assert '<html lang="en">' in english.get_data(as_text=True)  # the browser's language is above the default


def test_portal_texts_and_no_access_message_per_language(keys):
    harness = Harness(keys, config_overrides={
        "portals__academy__display_name": {"en": "Contoso Academy", "de": "Contoso Akademie"},
        "portals__academy__required_groups": ["Nobody"],
        "portals__academy__no_access_message": {"en": "Ask the academy team.", "de": "Fragen Sie das Akademie-Team."},
        "portals__academy__branding": {"page_title": {"en": "Contoso learning", "de": "Contoso Lernen"}},
    })  # fmt: skip
    notice = harness.client.get("/signed-out/academy", headers={"Accept-Language": "de"}).get_data(
        as_text=True
    )
    assert "Sie haben sich von Contoso Akademie abgemeldet." in notice
    assert "<title>Sie sind abgemeldet – Contoso Lernen</title>" in notice
    harness.client.get("/login/academy", headers={"Accept-Language": "de"})
    pending = harness.login()
    refused = harness.client.post("/saml/acs", data={"SAMLResponse": harness.valid_response(pending),
                                  "RelayState": pending.relay_state}, headers={"Accept-Language": "de"})  # fmt: skip
    body = refused.get_data(as_text=True)
    assert "Sie haben noch keinen Zugang zu diesem Portal" in body and "Fragen Sie das Akademie-Team." in body


def test_a_text_in_an_unknown_language_is_refused_naming_the_field(keys):
    data = base_config(keys, portals__academy__display_name={"en": "Academy", "klingon": "x"})
    with pytest.raises(ConfigError, match=r"portals\.academy\.display_name.*unknown language 'klingon'"):
        config_from_dict(data, "broker.yaml")
    with pytest.raises(ConfigError, match=r"portals\.academy\.default_language"):
        config_from_dict(base_config(keys, portals__academy__default_language="xx"), "broker.yaml")


def test_every_learner_string_is_in_every_catalogue():
    method_map = [("broker/web/**.py", "python"), ("broker/templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "lazy_gettext": None}
    found = {message for _, _, message, _, _ in extract_from_dir(ROOT, method_map, keywords=keywords)}
    assert len(found) > 60
    for language in LANGUAGES:
        with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as po:
            catalogue = read_po(po)
        translated = {m.id for m in catalogue if m.id and m.string}
        assert found - translated == set(), language


def test_committed_mo_files_match_their_po_files():
    """The .mo files are committed (a plain `pip install` needs no build step); they must be the compiled .po."""
    for language in LANGUAGES:
        folder = TRANSLATIONS / language / "LC_MESSAGES"
        with open(folder / "messages.po", "rb") as po, open(folder / "messages.mo", "rb") as mo:
            source, compiled = read_po(po), read_mo(mo)
        assert {m.id: m.string for m in source if m.id} == {m.id: m.string for m in compiled if m.id}, (
            f"{language}: run pybabel compile -d broker/translations"
        )
