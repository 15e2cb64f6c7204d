"""Everything loaded once at start: validated config, keys, upstream metadata, the state store.

Views and the login pipeline receive a Runtime; nothing on the login path reads files or parses metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from broker.claims.groups import GroupDirectory, graph_client_for
from broker.claims.presets import ClaimNames, claim_names_for
from broker.claims.profile import CANONICAL_FIELDS
from broker.clients.learnupon import LearnUponClient
from broker.config import Config, UpstreamSettings
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
class Runtime:
    config: Config
    store: Store
    broker_keys: KeyPair
    upstreams: dict[str, UpstreamIdp]
    portal_trust: dict[str, PortalTrust]
    claim_names: dict[str, ClaimNames]
    group_directories: dict[str, GroupDirectory | None] = field(default_factory=dict)
    learnupon_clients: dict[str, LearnUponClient] = field(default_factory=dict)
    next_certificates: dict[str, x509.Certificate] = field(default_factory=dict)  # published before rollover
    metrics: Metrics = field(default_factory=Metrics)
    metadata_refresher: MetadataRefresher | None = None  # started by the app, for metadata_url upstreams
    left_out: dict[str, str] = field(default_factory=dict)  # "upstreams.X" / "portals.Y" → why no client
    clock: Callable[[], datetime] = field(default=_now)
    durability_probe: DurabilityProbe = field(default_factory=DurabilityProbe)

    @property
    def skew(self) -> timedelta:
        return timedelta(seconds=self.config.broker.clock_skew_seconds)


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
        upstream = UpstreamIdp(
            upstream.entity_id, upstream.sso_url, upstream.certificates, True, upstream.valid_until
        )
    return upstream


def build_runtime(
    config: Config,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] = _now,
    metrics: Metrics | None = None,
    env: Mapping[str, str] = os.environ,
    require_secrets: bool = True,
) -> Runtime:
    """Load everything a login needs. Without `require_secrets` (the CLI's offline tools) a Graph or LearnUpon
    client whose secret is missing is left out and listed in `left_out` instead of failing."""
    source = str(config.source or "<config>")
    broker_keys = load_key_pair(config.broker.signing.key, config.broker.signing.cert)
    upstreams = {name: load_upstream(name, settings, source) for name, settings in config.upstreams.items()}
    lifetime = timedelta(seconds=config.broker.assertion_lifetime_seconds)
    portal_trust = {}
    for name, portal in config.portals.items():
        keys = config.portal_signing(name)
        portal_trust[name] = PortalTrust(
            idp_entity_id=config.broker.idp_entity,
            acs_url=config.portal_acs_url(name),
            audience=config.portal_audience(name),
            key_pair=load_key_pair(keys.key, keys.cert),
            algorithm=portal.algorithm,
            sign_response=portal.sign_response,
            lifetime=lifetime,
        )
    # Attributes that portals' custom data rules read by upstream name are kept when claims are mapped.
    wanted = {
        f.source for p in config.portals.values() for f in p.custom_data if f.source not in CANONICAL_FIELDS
    }
    claim_names = {
        name: claim_names_for(settings.preset, settings.claims.model_dump(), wanted)
        for name, settings in config.upstreams.items()
    }
    group_directories: dict[str, GroupDirectory | None] = {}
    left_out: dict[str, str] = {}
    for name, settings in config.upstreams.items():
        graph = settings.groups.graph
        group_directories[name] = None
        if graph is None:
            continue
        try:
            group_directories[name] = graph_client_for(graph, env=env, budget=settings.groups.budget_seconds)
        except ConfigError as exc:
            if require_secrets:
                raise ConfigError(f"{source}: upstreams.{name}.groups.graph: {exc}") from None
            left_out[f"upstreams.{name}"] = str(exc)
    next_certificates = {}
    for name, portal in config.portals.items():
        path = portal.next_certificate or (config.broker.next_certificate if portal.signing is None else None)
        if path is not None:
            try:
                next_certificates[name] = load_certificate_text(Path(path).read_text())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{source}: portals.{name}.next_certificate: {path}: {exc}") from None
    learnupon_clients = {}
    for name, portal in config.portals.items():
        if portal.provisioning.enabled:
            try:
                learnupon_clients[name] = build_client(name, portal.provisioning, env)
            except ConfigError as exc:
                if require_secrets:
                    raise ConfigError(f"{source}: portals.{name}.provisioning: {exc}") from None
                left_out[f"portals.{name}"] = str(exc)
    return Runtime(
        config=config,
        store=store if store is not None else open_store(config.store.url),
        broker_keys=broker_keys,
        upstreams=upstreams,
        portal_trust=portal_trust,
        claim_names=claim_names,
        group_directories=group_directories,
        learnupon_clients=learnupon_clients,
        next_certificates=next_certificates,
        metrics=metrics or Metrics(),
        metadata_refresher=MetadataRefresher(upstreams, refresh_targets(config)),
        left_out=left_out,
        clock=clock,
    )
