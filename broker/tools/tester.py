"""The admin's flow tester: a real login through the upstream IdP that ends in a trace page instead of the
portal. The login's own steps run in trace mode (broker.login): provisioning is a dry run, the assertion an
unsigned preview, signed only when the admin presses Continue. A refused response shows the exact check,
expected and got."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

from lxml import etree

from broker.errors import LoginRefused, SamlRejected
from broker.login import begin, continue_held, run_steps
from broker.login_run import LoginRun, Mode
from broker.model import OutgoingLogin, PendingLogin
from broker.pending import start_login
from broker.picker import HeldLogin
from broker.runtime import Runtime
from broker.saml.authn_request import UpstreamRequest
from broker.saml.xml import UnsafeXml, parse_untrusted
from broker.store import keys

REPORT_TTL_SECONDS = 600  # a trace shows a user's claims and groups: kept ten minutes, for its admin only
TraceStatus = Literal["pass", "fail", "info"]


class TraceExpired(LoginRefused):
    """The trace page's Continue came after its test login expired, was used, or belongs to another admin."""

    check = "trace_expired"


@dataclass
class TraceStep:
    section: str
    status: TraceStatus
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
    pipeline: list[tuple[str, float, str]] = field(default_factory=list)  # (step, milliseconds, outcome)
    error: str | None = None
    held: dict | None = None  # what "continue to the portal" needs (HeldLogin.to_json)
    owner: str = ""  # the admin who ran the test: nobody else may read or continue it

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


def save(rt: Runtime, report: TraceReport) -> None:
    rt.store.put(keys.trace_report(report.id), json.dumps(asdict(report)).encode(), REPORT_TTL_SECONDS)


def load(rt: Runtime, report_id: str, owner: str) -> TraceReport | None:
    """The report, if it has not expired and `owner` is the admin who ran the test."""
    raw = rt.store.get(keys.trace_report(report_id)) if len(report_id) <= 64 else None
    if raw is None:
        return None
    data = json.loads(raw)
    data["steps"] = [TraceStep(**step) for step in data["steps"]]
    report = TraceReport(**data)
    return report if owner and report.owner == owner else None


def start_test(
    rt: Runtime, portal: str, upstream: str, browser: str | None = None, owner: str = ""
) -> UpstreamRequest:
    """Start a real login for `portal` whose answer comes back to `owner`'s trace page; returns how to reach
    the IdP."""
    sent = start_login(rt, portal, upstream, purpose="test", browser=browser)
    request_id = etree.fromstring(sent.request_xml).get("ID") or ""  # noqa: S320 (our own request)
    ttl = rt.config.broker.login_ttl_seconds
    rt.store.put(keys.test_request(request_id), sent.request_xml, ttl)
    rt.store.put(keys.test_owner(request_id), owner.encode(), ttl)
    return sent


def run_test(rt: Runtime, saml_response: str, relay_state: str | None, pending: PendingLogin) -> TraceReport:
    """The login's steps in trace mode, with a recorder; the report is kept for the trace page."""
    assert pending.portal is not None
    report = TraceReport(secrets.token_urlsafe(16), pending.portal, pending.upstream, time.time())
    report.owner = (rt.store.get(keys.test_owner(pending.request_id or "")) or b"").decode()
    request_xml = rt.store.get(keys.test_request(pending.request_id or "")) or b""
    report.authn_request = pretty_xml(request_xml) if request_xml else "(not kept)"
    try:
        report.response = pretty_xml(base64.b64decode("".join(saml_response.split()), validate=True))
    except (binascii.Error, ValueError):
        report.response = "(not base64)"

    def record(section: str, detail: str) -> None:
        report.steps.append(TraceStep(section, "info" if section in ("groups", "claims") else "pass", detail))

    try:
        run = run_steps(begin(rt, saml_response, relay_state, pending=pending, mode=Mode.TRACE, trace=record))
    except LoginRefused as exc:  # before any step: no pending login, an unsolicited response refused
        run = None
        _refused(report, exc)
    if run is not None:
        _describe(rt, run, report)
    save(rt, report)
    return report


def _refused(report: TraceReport, exc: LoginRefused) -> None:
    if isinstance(exc, SamlRejected):
        report.steps.append(TraceStep(exc.check, "fail", exc.reason, _text(exc.expected), _text(exc.got)))
        report.error = f"{exc.check}: {exc.reason}"
    else:
        report.steps.append(TraceStep("refused", "fail", exc.reason))
        report.error = exc.reason


def _describe(rt: Runtime, run: LoginRun, report: TraceReport) -> None:
    report.pipeline = [(step.name, round(step.seconds * 1000, 2), step.outcome) for step in run.done]
    if run.identity is not None:
        report.attributes_received = {k: list(v) for k, v in run.identity.attributes.items()}
    if run.claims is not None:
        report.claims = asdict(run.claims)
    if run.decision is not None:
        report.routing = run.decision.reason
    if run.refused is not None:
        _refused(report, run.refused)
        return
    assert run.portal is not None and run.identity is not None and run.claims is not None
    _describe_provisioning(run, report)
    if run.outgoing is not None and run.issued is not None:
        _describe_outgoing(rt, run.outgoing, run.issued.xml, report)
    report.held = HeldLogin(run.identity, run.claims, run.pending.target, run.portal).to_json()


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _describe_provisioning(run: LoginRun, report: TraceReport) -> None:
    preview = run.provisioning_preview
    if preview is None:
        report.provisioning_plan = [
            "provisioning is off for this portal: LearnUpon creates the user on first login"
        ]
        return
    if preview.calls is None:
        report.provisioning_plan = [f"could not read the current state from LearnUpon: {preview.problem}"]
        report.steps.append(TraceStep("provisioning", "fail", preview.problem or ""))
        return
    desired = preview.desired
    report.provisioning_plan = [f"groups (as in the assertion): {'; '.join(desired.groups) or '-'}"]
    report.provisioning_plan += [f"planned enrolment: {line}" for line in desired.planned_enrollments()]
    report.provisioning_plan += [call.describe() for call in preview.calls] or ["no change needed"]
    report.steps.append(
        TraceStep("provisioning", "info", f"dry run: {len(preview.calls)} API call(s) would be made")
    )


def _describe_outgoing(rt: Runtime, outgoing: OutgoingLogin, document: bytes, report: TraceReport) -> None:
    trust = rt.portals[outgoing.portal].trust
    report.outgoing = pretty_xml(document)
    report.fingerprints = {"sha1": trust.key_pair.sha1_fingerprint, "sha256": trust.key_pair.sha256_fingerprint,
                           "algorithm": trust.algorithm}  # fmt: skip
    root = etree.fromstring(document)
    values: dict[str, list[str]] = {}
    for attribute in root.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute"):
        values[attribute.get("Name") or ""] = [v.text or "" for v in attribute]
    report.outgoing_attributes = values
    report.steps.append(TraceStep(
        "issue", "pass", f"unsigned preview for {trust.acs_url}; signed ({trust.algorithm}) when you continue"
    ))  # fmt: skip


def continue_to_portal(rt: Runtime, report_id: str, owner: str) -> OutgoingLogin:
    """The trace page's button: the steps after routing, live: provision for real, sign a fresh assertion.
    Only for the admin who ran the test."""
    report = load(rt, report_id, owner)
    if report is None or report.held is None:
        raise TraceExpired(f"trace {report_id} cannot continue")
    rt.store.delete(keys.trace_report(report_id))  # one continue per test login
    run = continue_held(rt, HeldLogin.from_json(report.held))
    assert run.outgoing is not None
    return run.outgoing
