"""Metadata: the broker as SP (for the upstream IdP) and as IdP of each portal (for LearnUpon)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from broker.pending import UnknownPortal
from broker.tools.portal_setup import portal_metadata_xml, portal_setup, sp_metadata_xml
from broker.web.pages import page, runtime

bp = Blueprint("metadata", __name__)

METADATA_TYPE = "application/samlmetadata+xml"


@bp.get("/saml/metadata")
def sp():
    return Response(sp_metadata_xml(runtime()), mimetype=METADATA_TYPE)


@bp.get("/portals/<portal>/metadata")
def portal(portal: str):
    """XML for tools (or ?format=xml); for a browser, a page with everything the LearnUpon admin pastes."""
    rt = runtime()
    if portal not in rt.portals:
        raise UnknownPortal(f"metadata asked for unknown portal {portal!r}")
    setup = portal_setup(rt, portal)
    xml = portal_metadata_xml(rt, portal)
    best = request.accept_mimetypes.best_match(["text/html", METADATA_TYPE, "application/xml"])
    if request.args.get("format") == "xml" or best != "text/html":
        response = Response(xml, mimetype=METADATA_TYPE)
        response.headers["X-Certificate-SHA1-Fingerprint"] = setup.sha1
        response.headers["X-Certificate-SHA256-Fingerprint"] = setup.sha256
        if setup.next is not None:
            response.headers["X-Next-Certificate-SHA1-Fingerprint"] = setup.next.sha1
            response.headers["X-Next-Certificate-SHA256-Fingerprint"] = setup.next.sha256
        return response
    return page("portal_setup.html", setup=setup, metadata=xml.decode("utf-8"))
