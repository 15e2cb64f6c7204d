"""Everything loaded once at start: validated config, keys, upstream metadata, the state store.

Views and the login pipeline receive a Runtime; nothing on the login path reads files or parses metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

from cryptography import x509

from broker.claims.groups import GroupDirectory, graph_client_for
from broker.claims.presets import ClaimNames, claim_names_for
from broker.claims.profile import CANONICAL_FIELDS
from broker.clients.guard import ServiceGuard
from broker.clients.learnupon import LearnUponClient
from broker.config import Config, PortalSettings, UpstreamSettings
from broker.errors import ConfigError
from broker.keys import KeyPair, load_certificate_text, load_key_pair
from broker.ops.observability import Metrics
from broker.provisioning.sync import build_client
from broker.saml.assertion import PortalTrust
from broker.saml.metadata import MetadataError, UpstreamIdp, parse_idp_metadata
from broker.saml.upstream_metadata import MetadataRefresher, fetch_upstream, refresh_targets
from broker.store import Store
from broker.store.connect import open_store
from broker.store.durability import DurabilityProbe


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Upstream:
    """One upstream IdP as loaded: its settings, its metadata, how its claims are named, its group directory."""

    name: str
    settings: UpstreamSettings
    idp: (
        UpstreamIdp  # entity ID, SSO URL, certificates: replaced in one assignment when metadata is refreshed
    )
    claim_names: ClaimNames
    directory: GroupDirectory | None = None  # Microsoft Graph, when group GUIDs are named through it

    @property
    def entity_id(self) -> str:
        return self.idp.entity_id


@dataclass(frozen=True)
class Portal:
    """One LearnUpon portal as loaded: its settings, how its assertions are signed, its API client."""

    name: str
    settings: PortalSettings
    trust: PortalTrust
    learnupon: LearnUponClient | None = None  # when provisioning is on (and its secrets are there)
    next_certificate: x509.Certificate | None = None  # published before a key rollover


class _CurrentMetadata(MutableMapping[str, UpstreamIdp]):
    """The upstreams' metadata as the refresher sees it: a refreshed copy lands in its Upstream."""

    def __init__(self, upstreams: dict[str, Upstream]):
        self._upstreams = upstreams

    def __getitem__(self, name: str) -> UpstreamIdp:
        return self._upstreams[name].idp

    def __setitem__(self, name: str, idp: UpstreamIdp) -> None:
        self._upstreams[name].idp = idp

    def __delitem__(self, name: str) -> None:
        raise TypeError("upstreams are removed by a configuration reload, not by a metadata refresh")

    def __iter__(self) -> Iterator[str]:
        return iter(self._upstreams)

    def __len__(self) -> int:
        return len(self._upstreams)


@dataclass
class Runtime:
    """What one configuration loaded into. A request reads it once (web.pages.runtime); a reload builds a new
    one and swaps it in, so a request never sees parts of two configurations."""

    config: Config
    store: Store
    broker_keys: KeyPair
    upstreams: dict[str, Upstream]
    portals: dict[str, Portal]
    metrics: Metrics = field(default_factory=Metrics)
    metadata_refresher: MetadataRefresher | None = None  # started by the app, for metadata_url upstreams
    left_out: dict[str, str] = field(default_factory=dict)  # "upstreams.X" / "portals.Y" → why no client
    clock: Callable[[], datetime] = field(default=_now)
    durability_probe: DurabilityProbe = field(default_factory=DurabilityProbe)

    @cached_property
    def outbound_deadline_seconds(self) -> float:
        """Once per configuration: the config computes it over every portal, and each request needs it."""
        return self.config.outbound_deadline_seconds()

    @property
    def skew(self) -> timedelta:
        return timedelta(seconds=self.config.broker.clock_skew_seconds)

    @property
    def upstream_metadata(self) -> MutableMapping[str, UpstreamIdp]:
        """Each upstream's current metadata, by name (what the metadata refresher reads and replaces)."""
        return _CurrentMetadata(self.upstreams)


def load_upstream(name: str, settings: UpstreamSettings, source: str = "<config>") -> UpstreamIdp:
    """An upstream from its metadata (file or URL) or from inline fields."""
    if settings.sso_url is not None:
        certs = []
        for path in settings.certificates:
            try:
                certs.append(load_certificate_text(Path(path).read_text()))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{source}: upstreams.{name}.certificates: {path}: {exc}") from None
        return UpstreamIdp(
            settings.entity_id or "", settings.sso_url, tuple(certs), settings.sign_authn_requests
        )
    try:
        if settings.metadata_url is not None:
            # the same fetch as the scheduled refresh: size cap, optional signature check, expiry
            upstream = fetch_upstream(
                settings.metadata_url, settings.metadata_refresh, entity_id=settings.entity_id
            )
        else:
            assert settings.metadata_file is not None
            upstream = parse_idp_metadata(
                Path(settings.metadata_file).read_bytes(), entity_id=settings.entity_id
            )
    except OSError as exc:
        raise ConfigError(f"{source}: upstreams.{name}.metadata_file: cannot read: {exc.strerror}") from None
    except MetadataError as exc:
        raise ConfigError(f"{source}: upstreams.{name}: {exc}") from None
    if settings.sign_authn_requests and not upstream.want_authn_requests_signed:
        upstream = replace(upstream, want_authn_requests_signed=True)
    return upstream


def build_runtime(
    config: Config,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    metrics: Metrics | None = None,
    env: Mapping[str, str] = os.environ,
    require_secrets: bool = True,
) -> Runtime:
    """Load everything a login needs. Without `require_secrets` (the CLI's offline tools) a Graph or LearnUpon
    client whose secret is missing is left out and listed in `left_out` instead of failing."""
    source = str(config.source or "<config>")
    broker_keys = load_key_pair(config.broker.signing.key, config.broker.signing.cert)
    left_out: dict[str, str] = {}
    # Attributes that portals' custom data rules read by upstream name are kept when claims are mapped.
    wanted = {
        f.source for p in config.portals.values() for f in p.custom_data if f.source not in CANONICAL_FIELDS
    }
    outbound = config.broker.outbound

    def guard(service: str) -> ServiceGuard:
        return ServiceGuard(service, max_concurrent=outbound.max_concurrent_per_service,
                            failures_to_open=outbound.failures_to_open, cooldown=outbound.cooldown_seconds)  # fmt: skip

    upstreams = {}
    for name, settings in config.upstreams.items():
        claim_names = claim_names_for(settings.preset, settings.claims.model_dump(), wanted)
        upstreams[name] = Upstream(name, settings, load_upstream(name, settings, source), claim_names)
        graph = settings.groups.graph
        if graph is None:
            continue
        try:
            upstreams[name].directory = graph_client_for(
                graph, env=env, budget=settings.groups.budget_seconds, guard=guard(f"graph:{name}")
            )
        except ConfigError as exc:
            if require_secrets:
                raise ConfigError(f"{source}: upstreams.{name}.groups.graph: {exc}") from None
            left_out[f"upstreams.{name}"] = str(exc)
    portals = {}
    for name, portal_settings in config.portals.items():
        trust = portal_trust(config, name)
        learnupon = None
        if portal_settings.provisioning.enabled:
            try:
                learnupon = build_client(
                    name, portal_settings.provisioning, env, guard=guard(f"learnupon:{name}")
                )
            except ConfigError as exc:
                if require_secrets:
                    raise ConfigError(f"{source}: portals.{name}.provisioning: {exc}") from None
                left_out[f"portals.{name}"] = str(exc)
        portals[name] = Portal(
            name, portal_settings, trust, learnupon, next_certificate(config, name, source)
        )
    runtime = Runtime(
        config=config,
        store=store if store is not None else open_store(config.store.url),
        broker_keys=broker_keys,
        upstreams=upstreams,
        portals=portals,
        metrics=metrics or Metrics(),
        left_out=left_out,
        clock=clock or _now,
    )
    runtime.metadata_refresher = MetadataRefresher(runtime.upstream_metadata, refresh_targets(config))
    return runtime


def portal_trust(config: Config, name: str) -> PortalTrust:
    """How portal `name` expects its assertions: where, for whom, signed with which key and algorithm."""
    settings, keys = config.portals[name], config.portal_signing(name)
    return PortalTrust(
        idp_entity_id=config.broker.idp_entity,
        acs_url=config.portal_acs_url(name),
        audience=config.portal_audience(name),
        key_pair=load_key_pair(keys.key, keys.cert),
        algorithm=settings.algorithm,
        sign_response=settings.sign_response,
        lifetime=timedelta(seconds=config.broker.assertion_lifetime_seconds),
    )


def next_certificate(config: Config, name: str, source: str) -> x509.Certificate | None:
    """The certificate published ahead of a key rollover: the portal's own, or the broker's for portals
    signed with the broker's key."""
    portal = config.portals[name]
    path = portal.next_certificate or (config.broker.next_certificate if portal.signing is None else None)
    if path is None:
        return None
    try:
        return load_certificate_text(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{source}: portals.{name}.next_certificate: {path}: {exc}") from None
