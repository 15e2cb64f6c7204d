"""What each side is told about the broker: the SP metadata for the upstream IdPs, and for each LearnUpon
portal the IdP metadata and the settings its admin pastes (fingerprints, login URL). Used by the web pages
and the CLI alike."""

from __future__ import annotations

from broker.keys import fingerprint
from broker.runtime import Runtime
from broker.saml.metadata import idp_metadata, sp_metadata
from broker.saml.xml import NAMEID_EMAIL


def sp_metadata_xml(rt: Runtime) -> bytes:
    sign = any(upstream.idp.want_authn_requests_signed for upstream in rt.upstreams.values())
    return sp_metadata(
        rt.config.broker.sp_entity, rt.config.broker.acs_url, rt.broker_keys, sign_requests=sign
    )


def learnupon_fields(rt: Runtime, portal: str) -> list[tuple[str, str, str]]:
    """Every field of LearnUpon's SAML settings the admin fills in, in the order LearnUpon shows them:
    (field, value to paste, why)."""
    trust = rt.portals[portal].trust
    base = rt.config.broker.base_url
    attributes = rt.config.portals[portal].attributes
    groups = attributes.groups
    return [
        ("Enabled", "Yes", ""),
        ("Version", "2.0", ""),
        ("IDP SSO Target URL", f"{base}/login/{portal}",
         "LearnUpon sends people who open the portal here; the broker signs them in through their own IdP"),
        ("Sign out URL", f"{base}/signed-out/{portal}", "a page that says they are signed out, with a way back in"),
        ("Unauthorized URL", f"{base}/unauthorized/{portal}",
         "where LearnUpon sends someone whose sign-in it refused; the page says whom to contact"),
        ("Disable portal login page", "Yes",
         f"everyone signs in through the broker; admins keep https://{portal}.learnupon.com/users/sign_in?no_sso=true"),
        ("Skip conditions", "No", "the broker's assertions carry Conditions that LearnUpon should check"),
        ("SAML Token POST param name", "SAMLResponse", ""),
        ("Name Identifier Format", NAMEID_EMAIL, "the NameID is the user's email address"),
        ("First Name Identifier Format", attributes.first_name, "the attribute that carries the first name"),
        ("Last Name Identifier Format", attributes.last_name, "the attribute that carries the last name"),
        ("Group attribute name", groups or "(not sent)",
         "turn on \"Sync group with SAML SSO\" on each LearnUpon group the broker should fill" if groups else
         "set portals.<portal>.attributes.groups to send group names"),
        ("Certificate fingerprint (SHA-1)", trust.key_pair.sha1_fingerprint,
         "Manage finger prints: older LearnUpon guides ask for SHA-1"),
        ("Certificate fingerprint (SHA-256)", trust.key_pair.sha256_fingerprint, "newer guides ask for SHA-256"),
    ]  # fmt: skip


def portal_setup(rt: Runtime, portal: str) -> dict:
    """What a LearnUpon admin pastes into Settings → Integrations → Single Sign On - SAML."""
    trust, next_cert = rt.portals[portal].trust, rt.portals[portal].next_certificate
    return {
        "fields": learnupon_fields(rt, portal),
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
