"""Configuration: one YAML file, validated on load into typed models (the sections are in this package's other
modules: broker itself in `service`, upstreams in `upstream`, portals and routing in `portal`).

Every error names the file, the field path and the reason. Secrets are never in the file: it names the
environment variables that hold them.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, ValidationError, model_validator

from broker.config.activity import ActivitySettings
from broker.config.base import StrictModel
from broker.config.domains import (
    PORTAL_NAME,
    scope_entries_overlap,
)
from broker.config.pages import LearnerPages
from broker.config.portal import (
    PortalSettings,
    RoutingSettings,
)
from broker.config.scim import ScimSettings
from broker.config.service import (
    AdminSettings,
    BrokerSettings,
    KeyFiles,
    RateLimitSettings,
    StoreSettings,
)
from broker.config.upstream import UpstreamSettings
from broker.errors import ConfigError


class Config(StrictModel):
    broker: BrokerSettings
    admin: AdminSettings = AdminSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    store: StoreSettings = StoreSettings()
    upstreams: dict[str, UpstreamSettings]
    portals: dict[str, PortalSettings]
    routing: RoutingSettings = RoutingSettings()
    scim: ScimSettings = ScimSettings()
    activity: ActivitySettings = ActivitySettings()
    learner_pages: LearnerPages = LearnerPages()
    source: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _references(self) -> Config:
        if not self.portals:
            raise ValueError("portals: at least one portal is required")
        known_upstreams = ", ".join(sorted(self.upstreams)) or "none"
        known_portals = ", ".join(sorted(self.portals))
        hosts: dict[str, str] = {}
        for name, portal in self.portals.items():
            if not PORTAL_NAME.match(name):
                raise ValueError(f"portals.{name}: portal names are lower-case letters, digits and '-'")
            for upstream in portal.upstream_names:
                if upstream not in self.upstreams:
                    raise ValueError(
                        f"portals.{name}: unknown upstream {upstream!r} (known: {known_upstreams})"
                    )
            for host in portal.hosts:
                if host.lower() in hosts:
                    raise ValueError(
                        f"portals.{name}.hosts: {host} is already used by portal {hosts[host.lower()]}"
                    )
                hosts[host.lower()] = name
        for index, rule in enumerate(self.routing.rules):
            for named in rule.portals:
                if named not in self.portals:
                    raise ValueError(
                        f"routing.rules.{index}.portals: unknown portal {named!r} (known: {known_portals})"
                    )
        for admin_upstream in self.admin.upstreams:
            if admin_upstream not in self.upstreams:
                raise ValueError(
                    f"admin.upstreams: unknown upstream {admin_upstream!r} (known: {known_upstreams})"
                )
        if self.routing.default_upstream and self.routing.default_upstream not in self.upstreams:
            raise ValueError(f"routing.default_upstream: unknown upstream (known: {known_upstreams})")
        for name, upstream_settings in self.upstreams.items():
            default_portal = upstream_settings.default_portal
            if default_portal and default_portal not in self.portals:
                raise ValueError(f"upstreams.{name}.default_portal: unknown portal (known: {known_portals})")
        for name, portal in self.portals.items():
            self._check_email_scopes(name, portal)
        for index, client in enumerate(self.scim.clients):
            if client.upstream and client.upstream not in self.upstreams:
                raise ValueError(
                    f"scim.clients.{index}.upstream: unknown upstream (known: {known_upstreams})"
                )
        return self

    def _check_email_scopes(self, name: str, portal: PortalSettings) -> None:
        """Two upstreams on one portal must not be able to assert the same address (unless listed as shared)."""
        upstreams = portal.upstream_names
        if len(upstreams) < 2:
            return
        for upstream in upstreams:
            if not self.upstreams[upstream].email_domains:
                raise ValueError(
                    f"upstreams.{upstream}.email_domains: portal {name} accepts several upstreams "
                    f"({', '.join(upstreams)}), so each must list the e-mail domains it may assert"
                )
        for index, first in enumerate(upstreams):
            for second in upstreams[index + 1 :]:
                for a in self.upstreams[first].email_domains:
                    for b in self.upstreams[second].email_domains:
                        if scope_entries_overlap(a, b) and not {a, b} & set(portal.shared_email_domains):
                            raise ValueError(
                                f"portals.{name}: upstreams {first} ({a}) and {second} ({b}) may both assert "
                                f"the same addresses; give them separate email_domains, or list {a} in "
                                f"portals.{name}.shared_email_domains to allow it"
                            )

    def outbound_deadline_seconds(self) -> float:
        """How long after a request arrives its outside calls must be over: `broker.outbound.deadline_seconds`,
        or the largest step budget (group resolution, provisioning) configured."""
        if self.broker.outbound.deadline_seconds is not None:
            return self.broker.outbound.deadline_seconds
        budgets = [u.groups.budget_seconds for u in self.upstreams.values()]
        budgets += [p.provisioning.budget_seconds for p in self.portals.values() if p.provisioning.enabled]
        return max(budgets, default=5.0)

    def portal_acs_url(self, name: str) -> str:
        return self.portals[name].acs_url or f"https://{name}.learnupon.com/saml/consumer"

    def portal_audience(self, name: str) -> str:
        return self.portals[name].audience or f"https://{name}.learnupon.com"

    def portal_signing(self, name: str) -> KeyFiles:
        return self.portals[name].signing or self.broker.signing


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"] if part != "__root__")
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {path or '(top level)'}: {message}")
    return "\n".join(lines)


def _resolve_paths(data: dict, base: Path) -> dict:
    """Relative key, cert and metadata paths are relative to the config file's folder."""

    def fix(value: object) -> object:
        if isinstance(value, str) and value and not os.path.isabs(value):
            return str(base / value)
        return value

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in (
                    "key",
                    "cert",
                    "metadata_file",
                    "next_certificate",
                    "signing_certificate",
                    "logo_file",
                ):
                    node[key] = fix(value)
                elif key == "certificates" and isinstance(value, list):
                    node[key] = [fix(v) for v in value]
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return data


def config_from_dict(data: object, source: str = "<config>", base: Path | None = None) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping (broker:, upstreams:, portals:)")
    if base is not None:
        data = _resolve_paths(data, base)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    if os.environ.get("REDIS_URL"):
        config = config.model_copy(update={"store": StoreSettings(url=os.environ["REDIS_URL"])})
    return config


# libyaml's safe loader when PyYAML was built with it (its wheels are): the same documents and errors, parsed
# ~10x faster — a 1,000-portal file loads in a fraction of a second instead of over one (bench/routing.py)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path) -> Config:
    """Read and validate the YAML file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader (libyaml's or PyYAML's)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    config = config_from_dict(data, str(path), base=path.resolve().parent)
    return config.model_copy(update={"source": path})


def secret_from_env(variable: str, what: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"environment variable {variable} ({what}) is not set")
    return value
