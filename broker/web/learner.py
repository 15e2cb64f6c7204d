"""Pages a learner sees: in their language, in their portal's branding, and always with a next step
("Start again", another sign-in option, the support contact)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, abort, g, redirect, send_file

from broker.config.pages import IMAGE_TYPES, Branding, LocalizedText, SupportContact
from broker.model import OutgoingLogin
from broker.saml.authn_request import UpstreamRequest
from broker.saml.xml import BINDING_REDIRECT
from broker.web.i18n import html_language, learner_language, portal_of_request
from broker.web.pages import page, runtime

bp = Blueprint("learner", __name__)


@dataclass(frozen=True)
class Brand:
    title: str
    logo_src: str | None
    logo_alt: str
    accent: str | None  # #rrggbb, validated in config


@dataclass(frozen=True)
class Support:
    name: str
    href: str
    email: str | None


def localized(text: str | None, language: str) -> str:
    if isinstance(text, LocalizedText):
        return text.in_language(language)
    return text or ""


def set_portal(portal: str | None) -> None:
    """The portal this request is about (its language default, branding, support contact, bookmark)."""
    if portal is not None:
        g.learner_portal = portal


def portal_name(portal: str, language: str | None = None) -> str:
    settings = runtime().config.portals[portal]
    return localized(settings.display_name, language or learner_language()) or portal


def _branding(portal: str | None) -> Branding:
    """The portal's branding, each unset field from learner_pages.branding."""
    base = runtime().config.learner_pages.branding
    if portal is None:
        return base
    own = runtime().config.portals[portal].branding
    return base.model_copy(update={name: getattr(own, name) for name in own.model_fields_set})


def brand(portal: str | None, language: str) -> Brand:
    branding = _branding(portal)
    title = localized(branding.page_title, language) or (portal_name(portal, language) if portal else "")
    logo = branding.logo_url or (f"/branding/{portal or '-'}/logo" if branding.logo_file else None)
    alt = localized(branding.logo_alt, language) or title
    return Brand(title, logo, alt, branding.primary_color)


def support(portal: str | None, language: str) -> Support | None:
    contact: SupportContact | None = runtime().config.learner_pages.support
    if portal is not None and runtime().config.portals[portal].support is not None:
        contact = runtime().config.portals[portal].support
    if contact is None:
        return None
    return Support(localized(contact.name, language), contact.href, contact.email)


def start_again_url(portal: str | None) -> str:
    """The portal's bookmark; without a portal, /login (routing rules, then the portal picker)."""
    return f"/login/{portal}" if portal else "/login"


def other_option_url(portal: str | None) -> str | None:
    """`?idp=choose` forgets the remembered IdP; offered only where there is a choice."""
    config = runtime().config
    offered = config.portals[portal].upstream_names if portal else (
        [config.routing.default_upstream] if config.routing.default_upstream else list(config.upstreams))  # fmt: skip
    if len(offered) < 2:
        return None
    return f"{start_again_url(portal)}?{urlencode({'idp': 'choose'})}"


def learner_page(
    template: str, status: int = 200, *, portal: str | None = None, form_action: str = "'self'",
    **context: object,
) -> Response:  # fmt: skip
    set_portal(portal)
    portal = portal_of_request()
    language = learner_language()
    branding = brand(portal, language)
    logo_origin = ""
    if branding.logo_src and branding.logo_src.startswith("https://"):
        parts = urlsplit(branding.logo_src)
        logo_origin = f"{parts.scheme}://{parts.netloc}"
    context = {
        "page_language": html_language(language),
        "brand": branding,
        "support": support(portal, language),
        "start_again": start_again_url(portal),
        "other_option": other_option_url(portal),
        **context,
    }
    response = page(template, status, form_action=form_action, img_src=logo_origin, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def autopost_page(outgoing: OutgoingLogin) -> Response:
    """The page that POSTs the signed Response to the portal; works without JavaScript (a button)."""
    target = urlsplit(outgoing.acs_url)
    return learner_page("autopost.html", portal=outgoing.portal, form_action=f"{target.scheme}://{target.netloc}",
                        outgoing=outgoing, portal_name=portal_name(outgoing.portal))  # fmt: skip


def to_upstream(sent: UpstreamRequest) -> Response:
    """Send the browser to the upstream IdP: a redirect, or (HTTP-POST binding) a form that submits itself,
    and works without JavaScript (a button)."""
    if sent.binding == BINDING_REDIRECT:
        response = cast(Response, redirect(sent.url, code=302))  # a Flask response (app.response_class)
        response.headers["Cache-Control"] = "no-store"
        return response
    target = urlsplit(sent.url)
    return learner_page("upstream_post.html", form_action=f"{target.scheme}://{target.netloc}", action=sent.url,
                        fields=sent.fields)  # fmt: skip


@bp.get("/branding/<portal>/logo")
def logo(portal: str):
    """A logo given as a file in the config (`branding.logo_file`); `-` is learner_pages' own."""
    config = runtime().config
    if portal != "-" and portal not in config.portals:
        abort(404)
    path = _branding(None if portal == "-" else portal).logo_file
    if path is None or not path.is_file():
        abort(404)
    return send_file(path, mimetype=IMAGE_TYPES[path.suffix.lower()], max_age=3600)
