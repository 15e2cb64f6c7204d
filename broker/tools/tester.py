"""The admin's flow tester: a real login through the upstream IdP that ends in a trace page instead of the
portal. Every step records what it did; a refused response shows the exact check, expected and got."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from broker.errors import LoginRefused, SamlRejected
from broker.login import finish_login, held_login, issue, receive, restore_login, start_login
from broker.model import OutgoingLogin, PendingLogin
from broker.provisioning.sync import dry_run
from broker.rules.routing import route
from broker.runtime import Runtime
from broker.saml.authn_request import decode_redirect_request
from broker.saml.xml import UnsafeXml, parse_untrusted

REPORT_TTL_SECONDS = 3600


@dataclass
class TraceStep:
    section: str
    status: str  # "pass", "fail" or "info"
    detail: str
    expected: str | None = None
    got: str | None = None


@dataclass
class TraceReport:
    id: str
    portal: str
    upstream: str
    created: float
    authn_request: str = ""
    response: str = ""
    steps: list[TraceStep] = field(default_factory=list)
    attributes_received: dict[str, list[str]] = field(default_factory=dict)
    claims: dict = field(default_factory=dict)
    routing: str = ""
    provisioning_plan: list[str] = field(default_factory=list)
    outgoing: str = ""
    outgoing_attributes: dict[str, list[str]] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    held: dict | None = None  # what "continue to the portal" needs

    def sections(self) -> dict[str, list[TraceStep]]:
        grouped: dict[str, list[TraceStep]] = {}
        for step in self.steps:
            grouped.setdefault(step.section, []).append(step)
        return grouped


def pretty_xml(document: bytes) -> str:
    """Indented XML for reading; refused documents are shown as text, never parsed unsafely."""
    try:
        root = parse_untrusted(document)
    except UnsafeXml as exc:
        return f"(not shown: {exc})\n" + document[:4000].decode("utf-8", "replace")
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode")


def _report_key(report_id: str) -> str:
    return f"trace:{report_id}"


def save(rt: Runtime, report: TraceReport) -> None:
    rt.store.put(_report_key(report.id), json.dumps(asdict(report)).encode(), REPORT_TTL_SECONDS)


def load(rt: Runtime, report_id: str) -> TraceReport | None:
    raw = rt.store.get(_report_key(report_id)) if len(report_id) <= 64 else None
    if raw is None:
        return None
    data = json.loads(raw)
    data["steps"] = [TraceStep(**step) for step in data["steps"]]
    return TraceReport(**data)


def start_test(rt: Runtime, portal: str, upstream: str, browser: str | None = None) -> str:
    """Start a real login for `portal` whose answer comes back to the trace page; returns the IdP URL."""
    url = start_login(rt, portal, upstream, purpose="test", browser=browser)
    request_xml = decode_redirect_request(parse_qs(urlsplit(url).query)["SAMLRequest"][0])
    request_id = etree.fromstring(request_xml).get("ID")
    rt.store.put(f"testreq:{request_id}", request_xml, rt.config.broker.login_ttl_seconds)
    return url


def run_test(rt: Runtime, saml_response: str, relay_state: str | None, pending: PendingLogin) -> TraceReport:
    """The whole pipeline with a recorder; provisioning as a dry run; the assertion issued but not posted."""
    assert pending.portal is not None
    report = TraceReport(secrets.token_urlsafe(16), pending.portal, pending.upstream, time.time())
    request_xml = rt.store.get(f"testreq:{pending.request_id}") or b""
    report.authn_request = pretty_xml(request_xml) if request_xml else "(not kept)"
    try:
        report.response = pretty_xml(base64.b64decode("".join(saml_response.split()), validate=True))
    except (binascii.Error, ValueError):
        report.response = "(not base64)"

    def record(section: str, detail: str) -> None:
        report.steps.append(
            TraceStep(section, "pass" if section not in ("groups", "claims") else "info", detail)
        )

    try:
        received = receive(rt, saml_response, relay_state, record, pending)
        identity, claims = received.identity, received.claims
        report.attributes_received = {k: list(v) for k, v in identity.attributes.items()}
        report.claims = asdict(claims)
        decision = route(rt.config, pending.portal, identity.upstream, claims)
        report.routing = decision.reason
        record("routing", f"{pending.portal}: {decision.reason}")
        _plan_provisioning(rt, pending.portal, claims, report)
        outgoing = issue(rt, pending.portal, identity, claims, pending.target)
        _describe_outgoing(rt, outgoing, report)
        report.held = {**held_login(identity, claims, pending.target), "portal": pending.portal}
    except SamlRejected as exc:
        report.steps.append(TraceStep(exc.check, "fail", exc.reason, _text(exc.expected), _text(exc.got)))
        report.error = f"{exc.check}: {exc.reason}"
    except LoginRefused as exc:
        report.steps.append(TraceStep("refused", "fail", exc.reason))
        report.error = exc.reason
    save(rt, report)
    return report


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _plan_provisioning(rt: Runtime, portal: str, claims, report: TraceReport) -> None:
    client = rt.learnupon_clients.get(portal)
    if client is None:
        report.provisioning_plan = [
            "provisioning is off for this portal: LearnUpon creates the user on first login"
        ]
        return
    try:
        plan = dry_run(portal, claims, rt.config.portals[portal].provisioning, client, rt.store)
    except Exception as exc:  # noqa: BLE001 - a dry run must never break the trace
        report.provisioning_plan = [f"could not read the current state from LearnUpon: {exc}"]
        report.steps.append(TraceStep("provisioning", "fail", str(exc)))
        return
    report.provisioning_plan = [call.describe() for call in plan.calls] or ["no change needed"]
    report.steps.append(
        TraceStep("provisioning", "info", f"dry run: {len(plan.calls)} API call(s) would be made")
    )


def _describe_outgoing(rt: Runtime, outgoing: OutgoingLogin, report: TraceReport) -> None:
    trust = rt.portal_trust[outgoing.portal]
    document = base64.b64decode(outgoing.saml_response)
    report.outgoing = pretty_xml(document)
    report.fingerprints = {"sha1": trust.key_pair.sha1_fingerprint, "sha256": trust.key_pair.sha256_fingerprint,
                           "algorithm": trust.algorithm}  # fmt: skip
    root = etree.fromstring(document)
    values: dict[str, list[str]] = {}
    for attribute in root.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute"):
        values[attribute.get("Name")] = [v.text or "" for v in attribute]
    report.outgoing_attributes = values
    report.steps.append(
        TraceStep("issue", "pass", f"assertion signed ({trust.algorithm}) for {trust.acs_url}")
    )


def continue_to_portal(rt: Runtime, report_id: str) -> OutgoingLogin:
    """The trace page's button: provision for real, issue a fresh assertion, post it to the portal."""
    report = load(rt, report_id)
    if report is None or report.held is None:
        raise LoginRefused(
            f"trace {report_id} cannot continue", public_message="This test login has expired."
        )
    rt.store.delete(_report_key(report_id))  # one continue per test login
    identity, claims, target = restore_login(report.held)
    return finish_login(rt, report.held["portal"], identity, claims, target)
