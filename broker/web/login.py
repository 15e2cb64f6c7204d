"""Login entry points: /login/<portal> (bookmarkable), /login (portal by host name or routing rules),
the IdP discovery page when several upstreams are offered (`?idp=choose` forgets the remembered choice), and the
portal picker's answer (303, then a GET that posts to the portal, so Back never resubmits)."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import gettext, lazy_gettext
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import BadRequest

from broker.login import choose_portal
from broker.pending import UnknownPortal, start_login
from broker.picker import CONTINUE_TTL_SECONDS, hold_outgoing, take_outgoing
from broker.rules.routing import portal_for_host, upstreams_for
from broker.web.binding import bind_to_browser, browser_hash
from broker.web.learner import autopost_page, learner_page, portal_name, set_portal, to_upstream
from broker.web.pages import runtime, secure_cookies

bp = Blueprint("login", __name__)

PICK_COOKIE = "broker_pick"
CONTINUE_COOKIE = "broker_continue"
CHOOSE = "choose"  # ?idp=choose: show the sign-in options again and forget the remembered one
IDP_COOKIE = "broker_idp"
IDP_COOKIE_DAYS = 90


def _idp_cookie() -> URLSafeSerializer:
    key = current_app.secret_key
    if not key:
        raise RuntimeError("the app has no secret key (create_app sets one)")
    return URLSafeSerializer(key, salt="remembered-idp")


def _remembered_idp() -> str | None:
    try:
        return _idp_cookie().loads(request.cookies.get(IDP_COOKIE, ""))
    except BadSignature:
        return None


def _upstream_choice(offered: list[str]) -> tuple[str | None, bool]:
    """?idp= hint, else the remembered choice, else the only one; None: ask the user. Second value: remember."""
    hint = request.args.get("idp")
    if hint == CHOOSE:
        return (offered[0] if len(offered) == 1 else None), False
    if hint is not None:
        if hint not in offered:
            raise BadRequest("That sign-in option is not offered here.")
        return hint, True
    remembered = _remembered_idp()
    if remembered in offered:
        return remembered, False
    return (offered[0] if len(offered) == 1 else None), False


def _not_the_brokers_host() -> bool:
    return request.host.lower() != urlsplit(runtime().config.broker.base_url).netloc.lower()


@bp.get("/login")
@bp.get("/login/<portal>")
def login(portal: str | None = None):
    rt = runtime()
    if portal is not None and portal not in rt.config.portals:
        raise UnknownPortal(f"unknown portal {portal!r}")
    set_portal(portal)
    if portal is None:
        portal = portal_for_host(rt.config, request.host)
        if portal is not None and _not_the_brokers_host():
            # The browser-binding cookie must live on the host the IdP posts back to (base_url's): continue there.
            query = f"?{urlencode(list(request.args.items(multi=True)))}" if request.args else ""
            return redirect(f"{rt.config.broker.base_url}/login/{portal}{query}", code=302)
    offered = upstreams_for(rt.config, portal)
    upstream, remember = _upstream_choice(offered)
    if upstream is None:
        response = discovery_page(portal, offered)
        if request.args.get("idp") == CHOOSE:
            response.delete_cookie(IDP_COOKIE)
        return response
    sent = start_login(rt, portal, upstream, request.args.get("target"), request.args.get("login_hint"),
                       browser=browser_hash())  # fmt: skip
    response = bind_to_browser(to_upstream(sent))
    if remember and len(offered) > 1:
        response.set_cookie(
            IDP_COOKIE, _idp_cookie().dumps(upstream), max_age=IDP_COOKIE_DAYS * 86400, httponly=True,
            secure=secure_cookies(), samesite="Lax",
        )  # fmt: skip
    return response


def discovery_page(portal: str | None, offered: list[str]):
    rt = runtime()
    keep = {k: v for k, v in request.args.items() if k in ("target", "login_hint")}
    options = [
        {"name": name, "label": rt.config.upstreams[name].display_name or name,
         "href": f"{request.path}?{urlencode({**keep, 'idp': name})}"}
        for name in offered
    ]  # fmt: skip
    title = portal_name(portal) if portal else gettext("your learning portal")
    return learner_page("discovery.html", portal=portal, title=title, options=options)


@bp.post("/login/choose")
def choose():
    rt = runtime()
    outgoing = choose_portal(
        rt,
        request.form.get("token", ""),
        request.cookies.get(PICK_COOKIE),
        request.form.get("portal", ""),
    )
    token, nonce = hold_outgoing(rt, outgoing)
    response = redirect(url_for("login.continue_to_portal", token=token), code=303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(PICK_COOKIE, path="/login/choose")
    response.set_cookie(
        CONTINUE_COOKIE, nonce, max_age=CONTINUE_TTL_SECONDS, path="/login/continue", httponly=True,
        secure=secure_cookies(), samesite="Lax",
    )  # fmt: skip
    return response


@bp.get("/login/continue/<token>")
def continue_to_portal(token: str):
    """After the picker's 303: post the held assertion to the portal, once. Back (or a reload) after that starts
    a fresh login instead of showing an error: the user is most likely still signed in at the IdP."""
    outgoing = take_outgoing(runtime(), token, request.cookies.get(CONTINUE_COOKIE))
    if outgoing is None:
        return redirect(url_for("login.login"), code=303)
    response = autopost_page(outgoing)
    response.delete_cookie(CONTINUE_COOKIE, path="/login/continue")
    return response


# LearnUpon's "Sign out URL" and "Unauthorized URL" point here (see the portal's setup page).
NOTICES = {
    "signed-out": (lazy_gettext("You are signed out"), lazy_gettext("You have signed out of %(portal)s.")),
    "unauthorized": (
        lazy_gettext("The learning portal did not accept this sign-in"),
        lazy_gettext("%(portal)s refused the sign-in. If this keeps happening, contact your IT service desk and "
                     "say which portal you were opening."),
    ),
}  # fmt: skip


@bp.get("/signed-out/<portal>")
@bp.get("/unauthorized/<portal>")
def portal_notice(portal: str):
    rt = runtime()
    if portal not in rt.config.portals:
        raise UnknownPortal(f"unknown portal {portal!r}")
    kind = request.path.strip("/").split("/", 1)[0]
    title, message = NOTICES[kind]
    name = portal_name(portal)
    return learner_page("portal_notice.html", portal=portal, title=str(title),
                        message=str(message) % {"portal": name}, portal_name=name)  # fmt: skip
