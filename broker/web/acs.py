"""POST /saml/acs: the upstream IdP's response comes in; an auto-posting form to the portal goes out
(or, when several portals are open to the user, the portal picker)."""

from __future__ import annotations

from flask import Blueprint, request

from broker.errors import SamlRejected
from broker.login import PortalChoice, complete_login
from broker.web.login import PICK_COOKIE
from broker.web.pages import autopost_page, page, runtime, secure_cookies

bp = Blueprint("acs", __name__)


@bp.post("/saml/acs")
def acs():
    saml_response = request.form.get("SAMLResponse")
    if not saml_response:
        raise SamlRejected("xml", "no SAMLResponse field in the POST")
    outcome = complete_login(runtime(), saml_response, request.form.get("RelayState"))
    if isinstance(outcome, PortalChoice):
        return picker_page(outcome)
    return autopost_page(outcome)


def picker_page(choice: PortalChoice):
    portals = runtime().config.portals
    options = [{"name": p, "label": portals[p].display_name or p, "description": portals[p].description}
               for p in choice.portals]  # fmt: skip
    response = page("picker.html", token=choice.token, options=options)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        PICK_COOKIE, choice.browser_nonce, max_age=300, path="/login/choose", httponly=True,
        secure=secure_cookies(), samesite="Lax",
    )  # fmt: skip
    return response
