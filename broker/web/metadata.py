"""Metadata: the broker as SP (for the upstream IdP) and as IdP of each portal (for LearnUpon)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from broker.keys import fingerprint
from broker.login import UnknownPortal
from broker.saml.metadata import idp_metadata, sp_metadata
from broker.web.pages import page, runtime

bp = Blueprint("metadata", __name__)

METADATA_TYPE = "application/samlmetadata+xml"


@bp.get("/saml/metadata")
def sp():
    rt = runtime()
    sign = any(u.want_authn_requests_signed for u in rt.upstreams.values())
    xml = sp_metadata(
        rt.config.broker.sp_entity, rt.config.broker.acs_url, rt.broker_keys, sign_requests=sign
    )
    return Response(xml, mimetype=METADATA_TYPE)


def portal_setup(rt, portal: str) -> dict:
    """What a LearnUpon admin pastes into Settings → Integrations → Single Sign On - SAML."""
    trust = rt.portal_trust[portal]
    base = rt.config.broker.base_url
    return {
        "portal": portal,
        "display_name": rt.config.portals[portal].display_name or portal,
        "login_url": f"{base}/login/{portal}",
        "idp_entity_id": trust.idp_entity_id,
        "acs_url": trust.acs_url,
        "audience": trust.audience,
        "algorithm": trust.algorithm,
        "sha1": trust.key_pair.sha1_fingerprint,
        "sha256": trust.key_pair.sha256_fingerprint,
        "not_after": trust.key_pair.certificate.not_valid_after_utc.date().isoformat(),
        "next": _next_certificate(rt, portal),
    }


def _next_certificate(rt, portal: str) -> dict | None:
    cert = rt.next_certificates.get(portal)
    if cert is None:
        return None
    return {
        "sha1": fingerprint(cert, "sha1"),
        "sha256": fingerprint(cert, "sha256"),
        "not_after": cert.not_valid_after_utc.date().isoformat(),
    }


@bp.get("/portals/<portal>/metadata")
def portal(portal: str):
    rt = runtime()
    if portal not in rt.portal_trust:
        raise UnknownPortal(f"metadata asked for unknown portal {portal!r}")
    setup = portal_setup(rt, portal)
    published = [rt.portal_trust[portal].key_pair]
    if portal in rt.next_certificates:
        published.append(rt.next_certificates[portal])
    xml = idp_metadata(setup["idp_entity_id"], setup["login_url"], published)
    best = request.accept_mimetypes.best_match(["text/html", METADATA_TYPE, "application/xml"])
    if request.args.get("format") == "xml" or best != "text/html":
        response = Response(xml, mimetype=METADATA_TYPE)
        response.headers["X-Certificate-SHA1-Fingerprint"] = setup["sha1"]
        response.headers["X-Certificate-SHA256-Fingerprint"] = setup["sha256"]
        if setup["next"]:
            response.headers["X-Next-Certificate-SHA1-Fingerprint"] = setup["next"]["sha1"]
            response.headers["X-Next-Certificate-SHA256-Fingerprint"] = setup["next"]["sha256"]
        return response
    return page("portal_setup.html", setup=setup, metadata=xml.decode("utf-8"))
