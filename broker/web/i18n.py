"""The learner's language (Flask-Babel over the gettext catalogues in broker/translations/).

Precedence, lowest first: the broker's default (`learner_pages.default_language`), the portal's
`default_language`, the browser's Accept-Language, an explicit `?lang=` (remembered in a cookie so it survives the
round trip through the IdP). The admin area stays English.
"""

from __future__ import annotations

from flask import Flask, Response, g, request
from flask_babel import Babel

from broker.config.pages import LANGUAGES, language_code
from broker.web.pages import runtime, secure_cookies

LANG_COOKIE = "broker_lang"
LANG_COOKIE_DAYS = 365
# Accept-Language spells regions with a hyphen; werkzeug matches "de-AT" to "de" and "pt" to "pt-BR"
_ACCEPTED = [code.replace("_", "-") for code in LANGUAGES]


def _known(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return language_code(value)
    except ValueError:
        return None


def portal_of_request() -> str | None:
    """The portal this request is about, when the view (or the pending login it found) knows it."""
    portal = g.get("learner_portal") or (request.view_args or {}).get("portal")
    return portal if isinstance(portal, str) and portal in runtime().config.portals else None


def learner_language() -> str:
    if "learner_language" in g:
        return g.learner_language
    chosen = (
        g.get("explicit_language")  # noted before the view ran (_note_explicit_language)
        or _known(request.cookies.get(LANG_COOKIE))
        or _known(request.accept_languages.best_match(_ACCEPTED))
        or _portal_default()
    )
    g.learner_language = chosen
    return chosen


def _portal_default() -> str:
    config = runtime().config
    portal = portal_of_request()
    if portal is not None and config.portals[portal].default_language:
        return config.portals[portal].default_language or LANGUAGES[0]
    return config.learner_pages.default_language


def html_language(code: str) -> str:
    """BCP 47 for `<html lang>` and Content-Language: pt_BR → pt-BR."""
    return code.replace("_", "-")


def _language_headers(response: Response) -> Response:
    """Learner pages say their language; any page may differ by Accept-Language and the language cookie."""
    if "learner_language" in g and response.mimetype == "text/html":
        response.headers["Content-Language"] = html_language(g.learner_language)
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    explicit = g.get("explicit_language")
    if explicit is not None and request.cookies.get(LANG_COOKIE) != explicit:
        response.set_cookie(LANG_COOKIE, explicit, max_age=LANG_COOKIE_DAYS * 86400, httponly=True,
                            secure=secure_cookies(), samesite="Lax")  # fmt: skip
    return response


def _note_explicit_language() -> None:
    """`?lang=` is remembered even when no page is shown: `/login/<portal>?lang=de` answers with the 302 to the
    IdP, and the learner must come back to pages in German."""
    explicit = _known(request.args.get("lang"))
    if explicit is not None:
        g.explicit_language = explicit


def register(app: Flask) -> None:
    Babel(app, locale_selector=learner_language)
    app.before_request(_note_explicit_language)
    app.after_request(_language_headers)
