"""Configuration: one YAML file, validated on load into typed models (the sections that belong to one
feature, such as group resolution or provisioning, are in this package's other modules).

Every error names the file, the field path and the reason. Secrets are never in the file: it names the
environment variables that hold them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from broker.config.activity import ActivitySettings
from broker.config.groups import GroupResolution
from broker.config.metadata import MetadataRefreshSettings, tenant_independent_problem
from broker.config.pages import Branding, LearnerPages, LocalizedText, SupportContact, Text, optional_language
from broker.config.provisioning import ProvisioningSettings
from broker.config.review import DirectorySettings, ReviewSettings
from broker.config.scim import PortalScimSettings, ScimSettings
from broker.config.urls import insecure_url_problem
from broker.errors import ConfigError

PORTAL_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# An e-mail domain an upstream may assert: `contoso.com`, or `*.contoso.com` for every subdomain (not itself).
EMAIL_DOMAIN = re.compile(
    r"^(\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"
)


def domain_in_scope(domain: str, entry: str) -> bool:
    """`entry` (an `email_domains` item) covers `domain`: equal, or a subdomain of a `*.` entry."""
    domain = domain.lower().rstrip(".")
    if entry.startswith("*."):
        return domain.endswith(entry[1:])
    return domain == entry


def scope_entries_overlap(first: str, second: str) -> bool:
    """Some domain is covered by both entries (so two upstreams could assert the same address)."""
    a_wild, b_wild = first.startswith("*."), second.startswith("*.")
    if not a_wild and not b_wild:
        return first == second
    if a_wild and not b_wild:
        return domain_in_scope(second, first)
    if b_wild and not a_wild:
        return domain_in_scope(first, second)
    a, b = first[2:], second[2:]
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _domain_entries(value: list[str]) -> list[str]:
    entries = []
    for raw in value:
        entry = raw.strip().lower().lstrip("@").rstrip(".")
        if not EMAIL_DOMAIN.match(entry):
            raise ValueError(
                f"{raw!r} is not a domain name (like contoso.com, or *.contoso.com for subdomains)"
            )
        entries.append(entry)
    return entries


class _Model(BaseModel):
    # Values stay out of error messages (a URL could carry a key); errors name the field and the reason.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class KeyFiles(_Model):
    key: Path = Field(description="PEM private key (RSA); keep it mode 600")
    cert: Path = Field(description="PEM certificate matching the key")


class OutboundSettings(_Model):
    """Limits on calls to outside services (LearnUpon, Microsoft Graph), per broker process."""

    deadline_seconds: float | None = Field(
        None, gt=0, le=120,
        description="all outside calls of one request end this long after it arrived; "
        "default: the largest group-resolution or provisioning budget",
    )  # fmt: skip
    max_concurrent_per_service: int = Field(4, ge=1, le=256, description="bulkhead: calls in flight per "
                                            "LearnUpon portal or Graph tenant; more fail fast")  # fmt: skip
    failures_to_open: int = Field(
        5, ge=1, le=1000, description="failed attempts in a row that open the circuit"
    )
    cooldown_seconds: float = Field(
        30, gt=0, le=3600, description="how long an open circuit skips the service"
    )


class BrokerSettings(_Model):
    base_url: str = Field(description="Public URL of the broker, e.g. https://sso.example.com")
    sp_entity_id: str | None = None
    idp_entity_id: str | None = None
    signing: KeyFiles
    next_certificate: Path | None = Field(None, description="published before a key rollover")
    clock_skew_seconds: int = Field(180, ge=0, le=900)
    login_ttl_seconds: int = Field(600, ge=30, le=3600)
    assertion_lifetime_seconds: int = Field(300, ge=30, le=3600)
    max_response_bytes: int = Field(256 * 1024, ge=4096, le=4 * 1024 * 1024)
    secret_key_env: str = "BROKER_SECRET_KEY"  # noqa: S105 (a variable name, not a secret)
    outbound: OutboundSettings = OutboundSettings()
    demo: bool = False

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def sp_entity(self) -> str:
        return self.sp_entity_id or f"{self.base_url}/saml/metadata"

    @property
    def idp_entity(self) -> str:
        return self.idp_entity_id or f"{self.base_url}/idp"


class StoreSettings(_Model):
    url: str = Field("memory://", description="memory:// or redis://host:port/db; REDIS_URL overrides")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not (
            value.startswith(
                ("memory", "redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
            )
        ):
            raise ValueError(
                "must be memory://, or a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL"
            )
        return value


class ClaimNameOverrides(_Model):
    """Attribute names to read for each canonical field, replacing the preset's (Okta, Google and OneLogin
    send whatever names their admin typed). `extra` lists attributes to keep by name for later rules."""

    email: list[str] | None = None
    first_name: list[str] | None = None
    last_name: list[str] | None = None
    display_name: list[str] | None = None
    groups: list[str] | None = None
    object_id: list[str] | None = None
    department: list[str] | None = None
    upn: list[str] | None = None
    extra: list[str] = Field(default_factory=list)


class UpstreamSettings(_Model):
    """An upstream IdP (Entra ID, Okta, Google, OneLogin): from a metadata file or URL, or inline fields."""

    preset: Literal["entra", "okta", "google", "onelogin", "adfs", "salesforce", "generic"] = "generic"
    claims: ClaimNameOverrides = ClaimNameOverrides()
    groups: GroupResolution = GroupResolution()
    metadata_file: Path | None = None
    metadata_url: str | None = None
    entity_id: str | None = None
    sso_url: str | None = None
    certificates: list[Path] = Field(default_factory=list, description="PEM files, for inline upstreams")
    sign_authn_requests: bool = False
    allow_sha1: bool = Field(
        False, description="accept RSA-SHA1 signatures from this upstream (off: forgeable)"
    )
    # Metadata is the trust anchor: a listed certificate past its notAfter is accepted (loudly) unless this is on.
    enforce_certificate_expiry: bool = False
    name_id_format: str | None = None
    display_name: str | None = None
    # IdP-initiated logins (a tile in Entra My Apps POSTs an unsolicited response): refused unless allowed.
    allow_unsolicited: bool = False
    metadata_refresh: MetadataRefreshSettings = MetadataRefreshSettings()
    default_portal: str | None = Field(None, description="portal for unsolicited logins with no RelayState")
    # Like Shibboleth's shibmd:Scope: the only e-mail domains this upstream may sign people in with.
    email_domains: list[str] = Field(
        default_factory=list, description="empty: any domain, allowed only on portals it serves alone"
    )

    @field_validator("email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return _domain_entries(value)

    @field_validator("metadata_url")
    @classmethod
    def _metadata_over_https(cls, value: str | None) -> str | None:
        # the metadata is the trust anchor (signing certificates): never over cleartext to another machine
        problem = insecure_url_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    directory: DirectorySettings | None = Field(None, description="where access reviews read its users")

    @model_validator(mode="after")
    def _one_source(self) -> UpstreamSettings:
        sources = [self.metadata_file is not None, self.metadata_url is not None, self.sso_url is not None]
        if sum(sources) != 1:
            raise ValueError("give exactly one of metadata_file, metadata_url, or inline entity_id/sso_url")
        if self.sso_url is not None and (not self.entity_id or not self.certificates):
            raise ValueError("an inline upstream needs entity_id, sso_url and certificates")
        problem = tenant_independent_problem(self.entity_id or "")
        if problem:
            raise ValueError(problem)
        return self


class PortalAttributes(_Model):
    """SAML attribute names the portal expects (LearnUpon lets admins choose the first/last name ones)."""

    first_name: str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
    last_name: str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
    email: str | None = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    groups: str | None = "groups"


class GroupProfile(_Model):
    """Which group names a portal receives (see broker.rules.portal_groups). Applied in order: allow-list,
    prefix stripping, renaming, then `add`. The same list goes into the assertion and into pre-provisioning."""

    allow: list[str] = Field(default_factory=list, description="names or fnmatch patterns; empty: all groups")
    strip_prefixes: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict, description="case-insensitive: name → new name")
    add: list[str] = Field(default_factory=list, description="groups every user of the portal gets")


class CustomDataField(_Model):
    """A LearnUpon custom user data field: the SAML attribute name must equal the LearnUpon field name."""

    field: str
    source: str = Field(
        description="a canonical field (department, display_name, …) or an upstream attribute name"
    )
    date: bool = Field(False, description="send as YYYY-MM-DD, as LearnUpon requires for dates")


class PortalSettings(_Model):
    """A LearnUpon portal that trusts the broker as its IdP."""

    upstream: str | None = Field(None, description="the one upstream IdP (shorthand for upstreams: [name])")
    upstreams: list[str] = Field(default_factory=list, description="several: users pick on a discovery page")
    display_name: Text | None = None
    description: Text = LocalizedText("")
    # the learner pages (broker/config/pages.py): these win over learner_pages' defaults
    default_language: str | None = Field(
        None, description="used when the browser asks for no language we have"
    )
    support: SupportContact | None = None
    branding: Branding = Branding()
    no_access_message: Text | None = Field(None, description="default: routing.no_access_message")
    hosts: list[str] = Field(default_factory=list, description="host names whose /login leads to this portal")
    required_groups: list[str] = Field(default_factory=list, description="any of these (names or patterns)")
    targets: list[str] = Field(default_factory=lambda: ["/*"], description="deep-link path patterns allowed")
    landing_path: str | None = Field(None, description="RelayState sent when the login carries no target")
    acs_url: str | None = None
    audience: str | None = None
    signing: KeyFiles | None = None
    next_certificate: Path | None = Field(None, description="published before a key rollover")
    algorithm: Literal["rsa-sha256", "rsa-sha1"] = "rsa-sha256"
    sign_response: bool = False
    attributes: PortalAttributes = PortalAttributes()
    groups: GroupProfile = GroupProfile()
    static_attributes: dict[str, list[str]] = Field(default_factory=dict)
    custom_data: list[CustomDataField] = Field(default_factory=list)
    provisioning: ProvisioningSettings = ProvisioningSettings()
    # email_domains entries that several of this portal's upstreams may all assert (an explicit exception)
    shared_email_domains: list[str] = Field(default_factory=list)
    # The first upstream that brings a user here owns the account; another one is refused unless `allow`.
    account_linking: Literal["refuse", "allow"] = "refuse"

    @field_validator("shared_email_domains")
    @classmethod
    def _shared_domains(cls, value: list[str]) -> list[str]:
        return _domain_entries(value)

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return optional_language(value)

    scim: PortalScimSettings = PortalScimSettings()
    review: ReviewSettings = ReviewSettings()

    @model_validator(mode="after")
    def _some_upstream(self) -> PortalSettings:
        if (self.upstream is None) == (not self.upstreams):
            raise ValueError("give either upstream: NAME or upstreams: [NAME, ...]")
        if self.landing_path is not None and not self.landing_path.startswith("/"):
            raise ValueError("landing_path must be a relative path starting with /")
        for name in (*self.provisioning.managed_groups, *self.provisioning.managed_group_patterns):
            prefix = next((p for p in self.groups.strip_prefixes if name.lower().startswith(p.lower())), None)
            if prefix is not None:
                raise ValueError(
                    f"provisioning: managed group {name!r} can never match: managed groups are named as the "
                    f"portal receives them, after strip_prefixes removed {prefix!r}"
                )
        groups_attribute = self.attributes.groups
        if groups_attribute and groups_attribute in self.static_attributes:
            # a second source of groups would make the assertion and pre-provisioning disagree
            raise ValueError(
                f"static_attributes.{groups_attribute}: give static groups in groups.add, so the assertion "
                "and pre-provisioning use the same list"
            )
        return self

    @property
    def upstream_names(self) -> list[str]:
        return [self.upstream] if self.upstream else list(self.upstreams)


class RoutingRule(_Model):
    """For /login with no portal: the first rule whose conditions all hold decides the portal(s)."""

    portals: list[str] = Field(min_length=1, description="several: the user picks on a portal picker")
    groups: list[str] = Field(default_factory=list, description="user is in any of these (names or patterns)")
    email_domains: list[str] = Field(default_factory=list)
    attributes: dict[str, list[str]] = Field(default_factory=dict, description="field or attribute → values")


class RoutingSettings(_Model):
    rules: list[RoutingRule] = Field(default_factory=list)
    default_upstream: str | None = None
    no_access_message: Text = LocalizedText(
        "Your account has no access to a learning portal here. Please contact your IT service desk."
    )


class RateLimitSettings(_Model):
    """Per client IP, shared by all replicas through the store. 0 turns a limit off. A whole office behind one
    NAT address shares its limit: size it for the busiest office's Monday-morning rush, not for one person."""

    login_per_minute: int = Field(600, ge=0)
    acs_per_minute: int = Field(600, ge=0)
    trusted_proxies: int = Field(0, ge=0, le=5, description="proxies in front that set X-Forwarded-For")


class AdminSettings(_Model):
    """Who may use /admin: members of these groups (after group resolution) signing in through these
    upstreams, or, for first setup, whoever holds the bootstrap token from the environment."""

    groups: list[str] = Field(
        default_factory=list, description="Entra group object ids, or names/patterns; empty: nobody via IdP"
    )
    upstreams: list[str] = Field(default_factory=list, description="empty: nobody signs in through an IdP")
    bootstrap_token_env: str = "BROKER_ADMIN_TOKEN"  # noqa: S105 (a variable name)
    # bootstrap token attempts per 10 minutes: from one client IP, and from everyone together
    token_attempts_per_client: int = Field(5, ge=1)
    token_attempts_total: int = Field(50, ge=1)
    session_minutes: int = Field(480, ge=5, le=24 * 60)


class Config(_Model):
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


def load_config(path: str | Path) -> Config:
    """Read and validate the YAML file at `path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
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
