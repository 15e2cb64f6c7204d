"""Login entry points: /login/<portal> (bookmarkable), /login (portal by host name or routing rules),
the IdP discovery page when several upstreams are offered, and the portal picker's answer."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, redirect, request
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.exceptions import BadRequest

from broker.login import choose_portal
from broker.pending import UnknownPortal, start_login
from broker.rules.routing import portal_for_host, upstreams_for
from broker.web.binding import bind_to_browser, browser_hash
from broker.web.pages import autopost_page, page, runtime, secure_cookies, to_upstream

bp = Blueprint("login", __name__)

PICK_COOKIE = "broker_pick"
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
    if portal is None:
        portal = portal_for_host(rt.config, request.host)
        if portal is not None and _not_the_brokers_host():
            # The browser-binding cookie must live on the host the IdP posts back to (base_url's): continue there.
            query = f"?{urlencode(list(request.args.items(multi=True)))}" if request.args else ""
            return redirect(f"{rt.config.broker.base_url}/login/{portal}{query}", code=302)
    offered = upstreams_for(rt.config, portal)
    upstream, remember = _upstream_choice(offered)
    if upstream is None:
        return discovery_page(portal, offered)
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
    title = rt.config.portals[portal].display_name or portal if portal else "your learning portal"
    response = page("discovery.html", title=title, options=options)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/login/choose")
def choose():
    outgoing = choose_portal(
        runtime(),
        request.form.get("token", ""),
        request.cookies.get(PICK_COOKIE),
        request.form.get("portal", ""),
    )
    response = autopost_page(outgoing)
    response.delete_cookie(PICK_COOKIE, path="/login/choose")
    return response


# LearnUpon's "Sign out URL" and "Unauthorized URL" point here (see the portal's setup page).
NOTICES = {
    "signed-out": ("You are signed out", "You have signed out of {portal}."),
    "unauthorized": (
        "The learning portal did not accept this sign-in",
        "{portal} refused the sign-in. If this keeps happening, contact your IT service desk and say which "
        "portal you were opening.",
    ),
}


@bp.get("/signed-out/<portal>")
@bp.get("/unauthorized/<portal>")
def portal_notice(portal: str):
    rt = runtime()
    if portal not in rt.config.portals:
        raise UnknownPortal(f"unknown portal {portal!r}")
    kind = request.path.strip("/").split("/", 1)[0]
    title, message = NOTICES[kind]
    name = rt.config.portals[portal].display_name or portal
    response = page(
        "portal_notice.html", title=title, message=message.format(portal=name), portal_name=name,
        login_url=f"/login/{portal}",
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response
