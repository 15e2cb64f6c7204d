"""What each side is told about the broker: the SP metadata for the upstream IdPs, and for each LearnUpon
portal the IdP metadata and the settings its admin pastes (fingerprints, login URL). Used by the web pages
and the CLI alike."""

from __future__ import annotations

from broker.keys import fingerprint
from broker.runtime import Runtime
from broker.saml.metadata import idp_metadata, sp_metadata


def sp_metadata_xml(rt: Runtime) -> bytes:
    sign = any(upstream.idp.want_authn_requests_signed for upstream in rt.upstreams.values())
    return sp_metadata(
        rt.config.broker.sp_entity, rt.config.broker.acs_url, rt.broker_keys, sign_requests=sign
    )


def portal_setup(rt: Runtime, portal: str) -> dict:
    """What a LearnUpon admin pastes into Settings → Integrations → Single Sign On - SAML."""
    trust, next_cert = rt.portals[portal].trust, rt.portals[portal].next_certificate
    return {
        "portal": portal,
        "display_name": rt.config.portals[portal].display_name or portal,
        "login_url": f"{rt.config.broker.base_url}/login/{portal}",
        "idp_entity_id": trust.idp_entity_id,
        "acs_url": trust.acs_url,
        "audience": trust.audience,
        "algorithm": trust.algorithm,
        "sha1": trust.key_pair.sha1_fingerprint,
        "sha256": trust.key_pair.sha256_fingerprint,
        "not_after": trust.key_pair.certificate.not_valid_after_utc.date().isoformat(),
        "next": None
        if next_cert is None
        else {
            "sha1": fingerprint(next_cert, "sha1"),
            "sha256": fingerprint(next_cert, "sha256"),
            "not_after": next_cert.not_valid_after_utc.date().isoformat(),
        },
    }


def portal_metadata_xml(rt: Runtime, portal: str) -> bytes:
    """The broker as this portal's IdP; the next certificate, when set, is published beside the current one."""
    published: list = [rt.portals[portal].trust.key_pair]
    if rt.portals[portal].next_certificate is not None:
        published.append(rt.portals[portal].next_certificate)
    return idp_metadata(rt.config.broker.idp_entity, f"{rt.config.broker.base_url}/login/{portal}", published)
