"""POST /saml/acs: the upstream IdP's response comes in, an auto-posting form to the portal goes out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, request

from broker.errors import SamlRejected
from broker.login import complete_login
from broker.web.pages import page, runtime

bp = Blueprint("acs", __name__)


@bp.post("/saml/acs")
def acs():
    saml_response = request.form.get("SAMLResponse")
    if not saml_response:
        raise SamlRejected("xml", "no SAMLResponse field in the POST")
    outgoing = complete_login(runtime(), saml_response, request.form.get("RelayState"))
    display = runtime().config.portals[outgoing.portal].display_name or outgoing.portal
    target = urlsplit(outgoing.acs_url)
    response = page(
        "autopost.html",
        form_action=f"{target.scheme}://{target.netloc}",
        outgoing=outgoing,
        portal_name=display,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
