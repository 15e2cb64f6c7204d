"""`broker simulate`: the login's own steps (broker.login) from a claims file, with no IdP and no browser.

Every step after the response is consumed runs, in trace mode (Graph and LearnUpon read, nothing written,
the assertion an unsigned preview) or with `--offline` in offline mode (no network, no store writes); each
result is shown. `tools_runtime` is the Runtime the admin commands share: missing secrets leave a client out.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lxml import etree

from broker.claims.groups import UnreachableDirectory
from broker.claims.profile import outgoing_attributes
from broker.config import Config
from broker.login import run_steps
from broker.login_run import LoginRun, Mode, StepDone
from broker.model import Claims, Identity, PendingLogin
from broker.ops.observability import diverted_logs
from broker.provisioning.preview import ProvisioningPreview
from broker.rules.routing import RoutingDecision
from broker.runtime import Runtime, build_runtime
from broker.saml.assertion import IssuedResponse
from broker.saml.xml import parse_untrusted
from broker.store.memory import MemoryStore

CLAIM_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "display_name",
    "groups",
    "object_id",
    "department",
    "upn",
)


class SimulationInputError(ValueError):
    """The claims file cannot be used; the message says why."""


# ---- a runtime for the admin tools -----------------------------------------------------------------------------


@dataclass
class ToolsRuntime:
    rt: Runtime
    notes: list[str] = field(default_factory=list)  # clients left out, and why


def tools_runtime(
    config: Config, *, env: Mapping[str, str] | None = None, offline: bool = False
) -> ToolsRuntime:
    """Keys, upstream metadata and portal trust as the broker loads them (a broken one raises ConfigError),
    with an in-memory store. A Graph or LearnUpon client whose secret is not in the environment (or every
    one, when `offline`) is left out and noted, instead of failing as `build_runtime` does at startup."""
    env = os.environ if env is None else env
    # secrets come only from the environment, so an empty one means: no Graph or LearnUpon client at all
    rt = build_runtime(config, store=MemoryStore(), env={} if offline else env, require_secrets=False)
    notes = []
    for where, why in rt.left_out.items():
        kind, name = where.split(".", 1)
        if kind == "upstreams":
            reason = "offline: Microsoft Graph not asked" if offline else f"Graph not available: {why}"
            rt.upstreams[name].directory = UnreachableDirectory(reason)
            notes.append(f"{where}: {reason}")
        elif not offline:
            notes.append(f"{where}: LearnUpon API not available: {why}")
    return ToolsRuntime(rt, notes)


# ---- the input ---------------------------------------------------------------------------------------------------


def read_claims_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise SimulationInputError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SimulationInputError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise SimulationInputError(f"{path}: must hold a JSON object")
    return data


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SimulationInputError(f"{where}: must be a string or a list of strings")


def identity_from_document(rt: Runtime, upstream: str, document: Mapping[str, Any]) -> Identity:
    """Either what the upstream IdP sends (`{"name_id": …, "attributes": {"<claim name>": [..]}}`), or
    canonical fields (`{"email": …, "first_name": …, "groups": [..]}`), written under the names the
    upstream's preset reads, so both go through the same claim mapping."""
    if "attributes" in document or "name_id" in document:
        unknown = set(document) - {"name_id", "name_id_format", "attributes"}
        attributes = document.get("attributes", {})
        if not isinstance(attributes, dict):
            raise SimulationInputError("attributes: must be an object of claim name → values")
        values = {str(k): _strings(v, f"attributes.{k}") for k, v in attributes.items()}
        name_id = document.get("name_id", "")
    else:
        unknown = set(document) - set(CLAIM_FIELDS) - {"subject"}
        names = rt.upstreams[upstream].claim_names
        values = {}
        for name in CLAIM_FIELDS:
            if name in document and getattr(names, name):
                values[getattr(names, name)[0]] = _strings(document[name], name)
        name_id = document.get("subject") or document.get("email", "")
    if unknown:
        raise SimulationInputError(
            f"unknown key(s) {', '.join(sorted(unknown))}: give name_id and attributes (as the IdP sends them) "
            f"or canonical fields ({', '.join(CLAIM_FIELDS)})"
        )
    if not isinstance(name_id, str):
        raise SimulationInputError("name_id: must be a string")
    return Identity(
        upstream=upstream,
        issuer=rt.upstreams[upstream].entity_id,
        assertion_id="_simulated",
        name_id=name_id,
        name_id_format=document.get("name_id_format"),
        attributes=values,
        authn_instant=rt.clock(),
    )


def choose_upstream(config: Config, portal: str | None, upstream: str | None) -> str:
    offered = config.portals[portal].upstream_names if portal else list(config.upstreams)
    if portal is None and config.routing.default_upstream and upstream is None:
        return config.routing.default_upstream
    if upstream is not None:
        if upstream not in offered:
            where = f"portal {portal}" if portal else "this config"
            raise SimulationInputError(f"{where} has no upstream {upstream!r} (known: {', '.join(offered)})")
        return upstream
    if len(offered) > 1:
        raise SimulationInputError(f"several upstreams ({', '.join(offered)}): choose one with --upstream")
    return offered[0]


# ---- the run -------------------------------------------------------------------------------------------------------


@dataclass
class Simulation:
    upstream: str
    identity: Identity
    claims: Claims | None = None  # after group resolution
    group_records: list[str] = field(default_factory=list)
    decision: RoutingDecision | None = None
    portal: str | None = None
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    provisioning: ProvisioningPreview | None = None
    issued: IssuedResponse | None = None
    relay_state: str | None = None
    refused: tuple[str, str] | None = None  # (step, reason)
    steps: tuple[StepDone, ...] = ()  # the login's steps that ran
    warnings: list[str] = field(default_factory=list)  # what the pipeline logged


def run_simulation(
    rt: Runtime,
    document: Mapping[str, Any],
    *,
    portal: str | None = None,
    upstream: str | None = None,
    offline: bool = False,
) -> Simulation:
    """The login's steps after validation. A refusal (no email, groups unresolved under `fail`, no access)
    ends the run at that step, as it would end the login."""
    if portal is not None and portal not in rt.config.portals:
        raise SimulationInputError(f"unknown portal {portal!r} (known: {', '.join(rt.config.portals)})")
    upstream = choose_upstream(rt.config, portal, upstream)
    identity = identity_from_document(rt, upstream, document)
    sim = Simulation(upstream, identity)

    def trace(section: str, detail: str) -> None:
        if section == "groups":
            sim.group_records.append(detail)

    pending = PendingLogin(None, upstream, portal, None, time.time())
    mode = Mode.OFFLINE if offline else Mode.TRACE
    # what the steps log (e.g. "dropping 2 group IDs without a name") becomes part of the report
    with diverted_logs(_Collect(sim.warnings)):
        run = run_steps(LoginRun(rt, pending, mode, trace, identity=identity), after="consume")
    sim.steps = run.done
    sim.claims, sim.decision, sim.portal = run.claims, run.decision, run.portal
    if run.refused is not None:
        sim.refused = (run.refused.step or "?", run.refused.reason)
        return sim
    sim.provisioning, sim.issued = run.provisioning_preview, run.issued
    if run.outgoing is not None:
        sim.attributes = outgoing_attributes_of(run)
        sim.relay_state = run.outgoing.relay_state
    return sim


def outgoing_attributes_of(run: LoginRun) -> dict[str, tuple[str, ...]]:
    assert run.portal is not None and run.claims is not None
    return outgoing_attributes(run.claims, run.rt.config.portals[run.portal])


class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


# ---- the report ------------------------------------------------------------------------------------------------------


def format_simulation(sim: Simulation, notes: Iterable[str] = ()) -> str:
    out: list[str] = []
    identity = sim.identity
    out.append(f"Upstream   {sim.upstream} ({identity.issuer})")
    out.append(f"NameID     {identity.name_id or '(none)'}")
    for note in notes:
        out.append(f"Note       {note}")
    if sim.claims is not None:
        out += ["", "Claims"]
        for f in fields(Claims):
            value = getattr(sim.claims, f.name)
            if f.name == "extra":
                for name, values in value.items():
                    out.append(f"  {name:<13} {'; '.join(values)}")
            else:
                shown = "; ".join(value) if isinstance(value, tuple) else value
                out.append(f"  {f.name:<13} {shown if shown else '-'}")
    if sim.group_records:
        out += ["", "Groups (value → name [source])"]
        out += [f"  {record}" for record in sim.group_records]
    if sim.warnings:
        out += ["", "Logged"] + [f"  {w}" for w in sim.warnings]
    if sim.steps:
        out += ["", "Steps      " + " → ".join(f"{s.name} ({s.seconds * 1000:.1f} ms{', refused' if s.outcome == 'refused' else ''})"
                                            for s in sim.steps)]  # fmt: skip
    if sim.refused is not None:
        step, reason = sim.refused
        out += ["", f"REFUSED at {step}: {reason}"]
        return "\n".join(out) + "\n"
    assert sim.decision is not None and sim.issued is not None
    out += ["", f"Routing    {', '.join(sim.decision.portals)} ({sim.decision.reason})"]
    if len(sim.decision.portals) > 1:
        out.append(f"           the user would pick on the portal picker; showing {sim.portal}")
    out += ["", f"Outgoing attributes ({sim.portal})"]
    out += [f"  {name} = {'; '.join(values)}" for name, values in sim.attributes.items()]
    if sim.provisioning is not None:
        out += ["", *_format_provisioning(sim.provisioning)]
    out += [
        "",
        f"Assertion  ID {sim.issued.assertion_id}, RelayState {sim.relay_state or '(none)'}",
        "           (an unsigned preview, pretty-printed for reading: only a real login signs)",
        _pretty(sim.issued.xml),
    ]
    return "\n".join(out) + "\n"


def _format_provisioning(preview: ProvisioningPreview) -> list[str]:
    desired = preview.desired
    out = [
        "Provisioning (dry run)",
        f"  desired    {desired.email}, {desired.first_name or '-'} {desired.last_name or '-'}, "
        f"user_type {desired.user_type or '(unchanged)'}, membership {desired.membership_type or '-'}",
        f"  groups     {'; '.join(desired.groups) or '-'}   (the assertion's groups, created with sso_sync)",
        f"  enrolments {'; '.join(desired.planned_enrollments()) or '-'}",
    ]
    if preview.calls is None:
        out.append(f"  plan       needs the LearnUpon API: {preview.problem}")
        out.append("             (--offline plans against an empty portal)")
        return out
    out.append(f"  plan       against {preview.against}: {len(preview.calls)} change(s)")
    if preview.cached:
        out.append("             the store says this state was synced already: a login would make no call")
    out += [f"    {call.describe()}" for call in preview.calls]
    return out


def _pretty(xml: bytes) -> str:
    root = parse_untrusted(xml)
    return etree.tostring(root, pretty_print=True, encoding="unicode").rstrip()
