"""POST /saml/acs: the upstream IdP's response comes in; an auto-posting form to the portal goes out
(or, when several portals are open to the user, the portal picker)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, redirect, request, url_for

from broker.errors import LoginRefused, SamlRejected
from broker.login import complete_login, sign_in_run
from broker.model import PendingLogin
from broker.ops.audit import audit
from broker.pending import OtherBrowser, Restart, already_used, find_pending, find_restart
from broker.picker import PortalChoice
from broker.rules.trust import NotAnAdmin, groups_match
from broker.tools.tester import run_test
from broker.web.admin import sign_in_admin
from broker.web.binding import check_same_browser, same_browser
from broker.web.i18n import learner_language
from broker.web.learner import autopost_page, learner_page, localized, portal_name, set_portal
from broker.web.login import PICK_COOKIE
from broker.web.pages import runtime, secure_cookies
from broker.web.ratelimit import counted_read

bp = Blueprint("acs", __name__)


@bp.get("/saml/acs")
def acs_opened_directly():
    """Someone opened the ACS address itself (a bookmark of the wrong page): say how to sign in."""
    response = learner_page("acs_get.html", 405)
    response.headers["Allow"] = "POST"
    return response


@bp.post("/saml/acs")
def acs():
    saml_response = request.form.get("SAMLResponse")
    if not saml_response:
        raise SamlRejected("xml", "no SAMLResponse field in the POST")
    rt, relay_state = runtime(), request.form.get("RelayState")
    pending = find_pending(rt, relay_state, read=counted_read)
    restart = find_restart(rt, relay_state) if pending is None else None
    if restart is not None:
        set_portal(restart.portal)  # a refusal below still offers that portal's bookmark
        if same_browser(restart.browser) and not already_used(rt, saml_response):
            return start_again(restart)
    if pending is not None:
        set_portal(pending.portal)
        refuse_from_other_browser(rt, pending)
    if pending is not None and pending.purpose == "test":
        report = run_test(rt, saml_response, relay_state, pending)
        return redirect(url_for("admin.trace", report_id=report.id), code=303)
    if pending is not None and pending.purpose == "admin":
        return admin_sign_in(saml_response, relay_state, pending)
    try:
        outcome = complete_login(rt, saml_response, relay_state, pending=pending)
    except LoginRefused as exc:
        reason = exc.check
        portal, upstream = (pending.portal or "-", pending.upstream) if pending else ("-", "-")
        rt.metrics.logins_rejected.labels(portal, upstream, reason).inc()
        audit("login.rejected", portal=portal, upstream=upstream, reason=reason, reference=exc.reference)
        raise
    if isinstance(outcome, PortalChoice):
        return picker_page(outcome)
    return autopost_page(outcome)


def start_again(restart: Restart):
    """A response for a login this browser already finished (Back from the portal to the IdP's page, then sign
    in again) or let expire: start the same login afresh rather than show an error."""
    audit("login.restarted", portal=restart.portal or "-", upstream=restart.upstream)
    query = {"idp": restart.upstream, **({"target": restart.target} if restart.target else {})}
    path = f"/login/{restart.portal}" if restart.portal else "/login"
    response = redirect(f"{path}?{urlencode(query)}", code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def refuse_from_other_browser(rt, pending: PendingLogin) -> None:
    """Login CSRF: the response must arrive in the browser that started the login (checked before anything
    is consumed, so the real browser can still finish)."""
    try:
        check_same_browser(pending)
    except OtherBrowser as exc:
        rt.metrics.logins_rejected.labels(pending.portal or "-", pending.upstream, exc.check).inc()
        audit("login.rejected", portal=pending.portal or "-", upstream=pending.upstream, reason=exc.check,
              purpose=pending.purpose, reference=exc.reference)  # fmt: skip
        raise


def admin_sign_in(saml_response: str, relay_state: str | None, pending: PendingLogin):
    """The login's steps up to routing; instead of a portal, the admin groups decide."""
    rt = runtime()
    run = sign_in_run(rt, saml_response, relay_state, pending)
    claims = run.claims
    assert claims is not None  # map_claims ran (sign_in_run raises otherwise)
    # only the upstreams named in admin.upstreams; Entra groups by object id (see broker.rules.trust)
    if run.upstream not in rt.config.admin.upstreams or not groups_match(claims, rt.config.admin.groups):
        raise NotAnAdmin(f"{claims.email} is not in an admin group {rt.config.admin.groups}")
    sign_in_admin(claims.email, run.upstream)
    return redirect(url_for("admin.index"), code=303)


def picker_page(choice: PortalChoice):
    language = learner_language()
    options = [{"name": p, "label": portal_name(p, language),
                "description": localized(runtime().config.portals[p].description, language)}
               for p in choice.portals]  # fmt: skip
    response = learner_page("picker.html", token=choice.token, options=options, account=choice.account)
    response.set_cookie(
        PICK_COOKIE, choice.browser_nonce, max_age=300, path="/login/choose", httponly=True,
        secure=secure_cookies(), samesite="Lax",
    )  # fmt: skip
    return response
