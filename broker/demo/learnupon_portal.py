"""A mock LearnUpon portal's SAML side: it does with the broker's assertion what LearnUpon does.

Trust is by certificate fingerprint (SHA-1 or SHA-256, several allowed, as LearnUpon's settings page takes
them); the signature, Destination, Recipient, Audience and time window are checked. Then, as LearnUpon
documents: a first login creates the user (JIT); a later one updates first and last name when they changed;
"Sync group with SAML SSO" groups are matched to the assertion's group values — the user is added to every
synced group named and removed from every synced group not named (groups without the flag are left alone, and
no group is ever created by a login). With an "IDP SSO Target URL" and "Disable portal login page", the
portal's own sign-in page redirects to that URL (`users/sign_in?no_sso=true` still shows the local form).
It shares `LearnUponState` with the fake REST API, so what a login did is visible through the API too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Flask, Response, redirect, render_template, request
from lxml import etree

from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.keys import fingerprint, load_certificate_text, normalise_fingerprint
from broker.saml.xml import DS, SAML, SAMLP, UnsafeXml, parse_instant, parse_untrusted, qname, text_of
from broker.saml.xmldsig import SignatureRejected, verify_enveloped

SKEW = timedelta(minutes=3)


@dataclass
class MockPortalSettings:
    fingerprints: list[str]
    audience: str
    login_url: str = ""  # LearnUpon's "IDP SSO Target URL": where its own sign-in page sends people
    disable_login_page: bool = False  # LearnUpon's "Disable portal login page"
    first_name_attribute: str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
    last_name_attribute: str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
    group_attribute: str = "groups"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


class PortalRejected(ValueError):
    pass


@dataclass
class Landing:
    email: str
    attributes: dict[str, list[str]]
    relay_state: str | None
    user: dict
    created: bool
    groups: list[str]
    sso_groups_unmatched: list[str]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    name_updated: bool = False
    enrollments: list[str] = field(default_factory=list)


def _certificate(signature: etree._Element):
    node = signature.find(f"{qname(DS, 'KeyInfo')}/{qname(DS, 'X509Data')}/{qname(DS, 'X509Certificate')}")
    if node is None or not node.text:
        raise PortalRejected("no certificate in the signature's KeyInfo")
    return load_certificate_text(node.text)


def _verify(element: etree._Element, settings: MockPortalSettings) -> etree._Element:
    signature = element.find(qname(DS, "Signature"))
    if signature is None:
        raise PortalRejected("the assertion is not signed")
    cert = _certificate(signature)
    wanted = {normalise_fingerprint(f) for f in settings.fingerprints}
    got = {
        normalise_fingerprint(fingerprint(cert, "sha1")),
        normalise_fingerprint(fingerprint(cert, "sha256")),
    }
    if not wanted & got:
        raise PortalRejected("the signing certificate's fingerprint is not configured for this portal")
    try:
        return verify_enveloped(element, [cert], allow_sha1=True).element
    except SignatureRejected as exc:
        raise PortalRejected(f"signature invalid: {exc}") from exc


def consume_assertion(saml_response: str, acs_url: str, settings: MockPortalSettings) -> tuple[str, dict]:
    """Check the posted Response the way LearnUpon does; return (email, attributes)."""
    try:
        root = parse_untrusted(base64.b64decode(saml_response, validate=True))
    except (binascii.Error, ValueError, UnsafeXml) as exc:
        raise PortalRejected(f"unreadable SAMLResponse: {exc}") from exc
    if root.tag != qname(SAMLP, "Response") or root.get("Destination") != acs_url:
        raise PortalRejected(f"Destination {root.get('Destination')!r} is not this portal's ACS {acs_url!r}")
    if root.get("InResponseTo") is not None:
        raise PortalRejected("IdP-initiated login expected: the Response must not carry InResponseTo")
    if root.find(qname(DS, "Signature")) is not None:
        root = _verify(root, settings)
    assertions = root.findall(qname(SAML, "Assertion"))
    if len(assertions) != 1:
        raise PortalRejected("exactly one assertion expected")
    assertion = _verify(assertions[0], settings)
    now = settings.clock()
    conditions = assertion.find(qname(SAML, "Conditions"))
    if conditions is None:
        raise PortalRejected("no Conditions (LearnUpon: Skip conditions = No)")
    if parse_instant(conditions.get("NotBefore"), "NotBefore") > now + SKEW:
        raise PortalRejected("assertion not yet valid")
    if parse_instant(conditions.get("NotOnOrAfter"), "NotOnOrAfter") <= now - SKEW:
        raise PortalRejected("assertion expired")
    audiences = [text_of(a) for a in conditions.iter(qname(SAML, "Audience"))]
    if settings.audience not in audiences:
        raise PortalRejected(f"audience {audiences} does not include {settings.audience!r}")
    data = assertion.find(f"{qname(SAML, 'Subject')}/{qname(SAML, 'SubjectConfirmation')}/"
                          f"{qname(SAML, 'SubjectConfirmationData')}")  # fmt: skip
    if data is None or data.get("Recipient") != acs_url or data.get("InResponseTo") is not None:
        raise PortalRejected(
            "SubjectConfirmationData must name this ACS as Recipient and carry no InResponseTo"
        )
    name_id = assertion.find(f"{qname(SAML, 'Subject')}/{qname(SAML, 'NameID')}")
    if name_id is None or name_id.get("Format") != "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress":
        raise PortalRejected("NameID must have the emailAddress format")
    attributes: dict[str, list[str]] = {}
    for attribute in assertion.iter(qname(SAML, "Attribute")):
        attributes[attribute.get("Name") or ""] = [
            text_of(v) for v in attribute.iter(qname(SAML, "AttributeValue"))
        ]
    return text_of(name_id), attributes


def land(state: LearnUponState, email: str, attributes: dict, settings: MockPortalSettings) -> Landing:
    """What LearnUpon does with an accepted assertion: JIT creation, name updates, sso_sync group sync.

    Undocumented, chosen as the stricter shape: an assertion without the group attribute counts as naming no
    group (the user leaves every synced group)."""
    first = (attributes.get(settings.first_name_attribute) or [""])[0]
    last = (attributes.get(settings.last_name_attribute) or [""])[0]
    user = state.find_user(email)
    if user is not None and user.get("enabled") is False:
        # LearnUpon refuses disabled users at sign-in (what SCIM deprovisioning relies on).
        raise PortalRejected(f"the user {email} is disabled in this portal")
    created = user is None
    name_updated = False
    if user is None:
        user = state.create_user(email, first_name=first, last_name=last)
    else:
        changed = {k: v for k, v in (("first_name", first), ("last_name", last)) if v and user.get(k) != v}
        if changed:
            state.update_user(user["id"], **changed)
            name_updated = True
    named = [str(v).strip() for v in attributes.get(settings.group_attribute, []) if str(v).strip()]
    named_lower = {title.lower() for title in named}
    member_of = {g["id"]: g for g in state.groups_of(user["id"])}
    added, removed, unmatched = [], [], []
    for title in named:
        group = state.find_group(title)
        if group is None or not group.get("sso_sync"):
            unmatched.append(title)
        elif group["id"] not in member_of:
            state.add_membership(group["id"], user["id"])
            added.append(group["title"])
    for group in member_of.values():
        if group.get("sso_sync") and group["title"].lower() not in named_lower:
            state.remove_membership_of(group["id"], user["id"])
            removed.append(group["title"])
    state.record_sign_in(user["id"])
    groups = [g["title"] for g in state.groups_of(user["id"])]
    enrollments = [e["course_name"] for e in state.enrollments_of(user["id"])]
    enrollments += [f"{e['lp_name']} (learning path)" for e in state.learning_path_enrollments_of(user["id"])]
    return Landing(email, attributes, request.form.get("RelayState"), state.get_user(user["id"]) or {}, created, groups,
                   unmatched, added, removed, name_updated, enrollments)  # fmt: skip


def portal_view(state: LearnUponState) -> list[dict]:
    """Each user with their groups (synced ones marked) and enrolments, for the portal's page."""
    view = []
    for user in sorted(state.users(), key=lambda u: u["email"]):
        groups = [
            g["title"] + (" (SAML sync)" if g.get("sso_sync") else "") for g in state.groups_of(user["id"])
        ]
        courses = [e["course_name"] for e in state.enrollments_of(user["id"])]
        courses += [f"{e['lp_name']} (learning path)" for e in state.learning_path_enrollments_of(user["id"])]
        view.append({**user, "groups": sorted(groups), "enrollments": sorted(courses)})
    return view


def portal_blueprint(
    states: Mapping[str, LearnUponState], settings: Mapping[str, MockPortalSettings]
) -> Blueprint:
    bp = Blueprint("learnupon_portal", __name__, url_prefix="/<portal>", template_folder="templates")

    def lookup(portal: str) -> tuple[LearnUponState, MockPortalSettings]:
        if portal not in states or portal not in settings:
            raise PortalRejected(f"no portal {portal!r} here")
        return states[portal], settings[portal]

    @bp.get("/")
    def home(portal: str):
        state, portal_settings = lookup(portal)
        return render_template(
            "learnupon_home.html", portal=portal, settings=portal_settings, users=portal_view(state)
        )

    @bp.get("/users/sign_in")
    def sign_in(portal: str):
        _, portal_settings = lookup(portal)
        sso_only = portal_settings.disable_login_page and portal_settings.login_url
        if sso_only and request.args.get("no_sso") != "true":
            return redirect(portal_settings.login_url)
        return render_template("learnupon_sign_in.html", portal=portal, settings=portal_settings)

    @bp.post("/saml/consumer")
    def consumer(portal: str):
        state, portal_settings = lookup(portal)
        email, attributes = consume_assertion(
            request.form.get("SAMLResponse", ""), request.base_url, portal_settings
        )
        landing = land(state, email, attributes, portal_settings)
        return render_template("learnupon_landing.html", portal=portal, landing=landing)

    @bp.errorhandler(PortalRejected)
    def rejected(exc: PortalRejected):
        body = render_template("learnupon_rejected.html", reason=str(exc))
        return Response(body, status=403, mimetype="text/html")

    return bp


def create_mock_learnupon(states: list[LearnUponState], settings: Mapping[str, MockPortalSettings]) -> Flask:
    """One WSGI app for all mock portals: `/<portal>/api/v1/...` (REST) and `/<portal>/saml/consumer`."""
    app = create_app(states)
    app.register_blueprint(portal_blueprint({s.portal: s for s in states}, settings))
    return app
