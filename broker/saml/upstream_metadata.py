"""Upstream IdP metadata fetched from a URL (Entra federation metadata, Okta, Google) and kept fresh.

`fetch_upstream` reads one copy (size-capped, optionally signature-checked, never expired). `MetadataRefresher`
refreshes every URL-based upstream on its schedule in one daemon thread and, when a refresh fails, keeps the last
good copy: a login never sees half-read or unverified metadata, and an IdP outage does not stop logins.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import requests
from cryptography import x509
from lxml import etree

from broker.clients.http import pooled_session
from broker.config.metadata import MIN_REFRESH_SECONDS
from broker.config.metadata import MetadataRefreshSettings as MetadataRefreshSettings  # re-exported
from broker.keys import fingerprint
from broker.saml.metadata import MetadataError, UpstreamIdp, is_expired, parse_idp_metadata
from broker.saml.metadata_download import download
from broker.saml.xml import MD, UnsafeXml, parse_untrusted, qname
from broker.saml.xmldsig import SignatureRejected, verify_enveloped

if TYPE_CHECKING:
    from broker.config import Config

log = logging.getLogger("broker.saml.upstream_metadata")

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class FetchedMetadata:
    upstream: UpstreamIdp
    cache_duration: timedelta | None


# xs:duration, e.g. PT1H, P1D, P1DT12H, PT0.5S. Years and months are taken as 365 and 30 days (scheduling only).
_DURATION = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(value: str) -> timedelta | None:
    """A non-negative xs:duration as a timedelta; None when it is not one."""
    match = _DURATION.match(value.strip())
    if match is None:
        return None
    years, months, days, hours, minutes, seconds = match.groups()
    return timedelta(
        days=int(years or 0) * 365 + int(months or 0) * 30 + int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=float(seconds or 0),
    )


def load_signing_certificates(path: Path) -> tuple[x509.Certificate, ...]:
    """Every certificate in a PEM file (a bundle lists the old and new ones during a metadata-key rollover)."""
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise MetadataError(f"signing_certificate {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return tuple(certs)


def _verified_document(document: bytes, certs: tuple[x509.Certificate, ...]) -> bytes:
    """The metadata as covered by its enveloped signature: only what was signed is read afterwards."""
    try:
        root = parse_untrusted(document.lstrip(BOM))
    except UnsafeXml as exc:
        raise MetadataError(f"metadata is not acceptable XML: {exc}") from None
    try:
        verified = verify_enveloped(root, certs)
    except SignatureRejected as exc:
        raise MetadataError(f"metadata signature: {exc}") from None
    return etree.tostring(verified.element)


def _cache_duration(document: bytes, entity_id: str) -> timedelta | None:
    """The shortest cacheDuration on the root or on the chosen EntityDescriptor; a malformed one is ignored."""
    root = parse_untrusted(document.lstrip(BOM))
    holders = [root] + [
        d
        for d in root.iter(qname(MD, "EntityDescriptor"))
        if d is not root and d.get("entityID") == entity_id
    ]
    durations = [parse_duration(h.get("cacheDuration", "")) for h in holders if h.get("cacheDuration")]
    return min((d for d in durations if d is not None), default=None)


def fetch_metadata(
    url: str,
    settings: MetadataRefreshSettings,
    *,
    entity_id: str | None = None,
    session: requests.Session | None = None,
    now: datetime | None = None,
) -> FetchedMetadata:
    """One copy of the metadata at `url` with its cacheDuration; MetadataError says why it cannot be used."""
    document = download(url, timeout=settings.timeout_seconds, max_bytes=settings.max_bytes,
                        signature_checked=settings.signing_certificate is not None, session=session)  # fmt: skip
    if settings.signing_certificate is not None:
        document = _verified_document(document, load_signing_certificates(settings.signing_certificate))
    upstream = parse_idp_metadata(document, entity_id=entity_id)
    if entity_id and upstream.entity_id != entity_id:
        raise MetadataError(
            f"metadata is for entity {upstream.entity_id!r}, not the configured {entity_id!r}"
        )
    if is_expired(upstream, now):
        raise MetadataError(f"metadata expired (validUntil {upstream.valid_until:%Y-%m-%dT%H:%M:%SZ})")
    return FetchedMetadata(upstream, _cache_duration(document, upstream.entity_id))


def fetch_upstream(
    url: str,
    settings: MetadataRefreshSettings,
    *,
    entity_id: str | None = None,
    session: requests.Session | None = None,
) -> UpstreamIdp:
    """The upstream IdP described at `url`. A UTF-8 BOM is tolerated and every signing certificate is kept."""
    return fetch_metadata(url, settings, entity_id=entity_id, session=session).upstream


def next_refresh_delay(
    settings: MetadataRefreshSettings,
    fetched: FetchedMetadata,
    now: datetime,
    *,
    floor_seconds: float = MIN_REFRESH_SECONDS,
) -> timedelta:
    """How long the copy just fetched may be used before the next refresh: the interval, shortened by the
    cacheDuration and by half the time left before validUntil (so a failed refresh still has time to retry)."""
    delay = timedelta(seconds=settings.interval_seconds)
    if settings.honour_cache_duration:
        if fetched.cache_duration is not None:
            delay = min(delay, fetched.cache_duration)
        if fetched.upstream.valid_until is not None:
            delay = min(delay, (fetched.upstream.valid_until - now) / 2)
    return max(delay, timedelta(seconds=floor_seconds))


@dataclass(frozen=True)
class RefreshTarget:
    """An upstream whose metadata comes from a URL. `sign_authn_requests` mirrors the upstream's config, which
    can ask for signed AuthnRequests when the metadata does not."""

    name: str
    url: str
    settings: MetadataRefreshSettings = MetadataRefreshSettings()
    entity_id: str | None = None
    sign_authn_requests: bool = False


@dataclass(frozen=True)
class RefreshStatus:
    """Per upstream, for metrics and /readyz. Replaced whole on every change, so a reader sees one state."""

    url: str
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_failure_reason: str | None = None
    consecutive_failures: int = 0
    valid_until: datetime | None = None
    next_refresh: datetime | None = None
    certificates: tuple[str, ...] = ()  # SHA-256 fingerprints of the signing certificates in use

    def expired(self, now: datetime) -> bool:
        return self.valid_until is not None and self.valid_until <= now


def refresh_targets(config: Config) -> list[RefreshTarget]:
    """The URL-based upstreams of a configuration."""
    targets = []
    for name, settings in config.upstreams.items():
        if settings.metadata_url is None:
            continue
        targets.append(
            RefreshTarget(
                name,
                settings.metadata_url,
                settings.metadata_refresh,
                settings.entity_id,
                settings.sign_authn_requests,
            )
        )
    return targets


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MetadataRefresher:
    """Keeps `upstreams[name]` (the Runtime's dict) current for each target.

    A refreshed copy replaces the dict entry in one assignment, so readers need no lock. A failed refresh
    (network, HTTP status, unparsable, expired, bad signature, another entityID) keeps the last good copy, is
    logged as a WARNING with the reason (never the document) and is retried sooner.
    """

    def __init__(
        self,
        upstreams: MutableMapping[str, UpstreamIdp],
        targets: Iterable[RefreshTarget],
        *,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = _utcnow,
        floor_seconds: float = MIN_REFRESH_SECONDS,
    ):
        self._upstreams = upstreams
        self._targets = {t.name: t for t in targets}
        self._session = session if session is not None else pooled_session(2)
        self._clock = clock
        self._floor = floor_seconds
        self._locks = {name: threading.Lock() for name in self._targets}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        now = clock()
        self._status: dict[str, RefreshStatus] = {}
        for name, target in self._targets.items():
            current = upstreams.get(name)
            first = now if current is None else now + timedelta(seconds=target.settings.interval_seconds)
            if current is not None and current.valid_until is not None:
                first = min(
                    first, now + max((current.valid_until - now) / 2, timedelta(seconds=floor_seconds))
                )
            self._status[name] = RefreshStatus(
                url=target.url,
                valid_until=current.valid_until if current else None,
                next_refresh=first,
                certificates=_fingerprints(current) if current else (),
            )

    @property
    def names(self) -> list[str]:
        return list(self._targets)

    def status(self) -> dict[str, RefreshStatus]:
        return dict(self._status)

    def refresh_now(self, name: str) -> bool:
        """Fetch `name`'s metadata now; True when a new good copy is in use, False when the last one was kept."""
        target = self._targets[name]
        with self._locks[name]:
            ok = self._refresh(target)
        self._wake.set()  # the schedule changed
        return ok

    def _refresh(self, target: RefreshTarget) -> bool:
        now = self._clock()
        previous = self._upstreams.get(target.name)
        status = self._status[target.name]
        try:
            fetched = fetch_metadata(
                target.url, target.settings, entity_id=target.entity_id, session=self._session, now=now
            )
            if previous is not None and fetched.upstream.entity_id != previous.entity_id:
                raise MetadataError(
                    f"metadata now names entity {fetched.upstream.entity_id!r}, was {previous.entity_id!r}"
                )
        except MetadataError as exc:
            return self._failed(target, status, now, str(exc)[:300])
        except Exception as exc:  # a refresh must never take the thread (or an admin request) down
            log.exception("upstream %s: unexpected error refreshing metadata", target.name)
            return self._failed(target, status, now, f"unexpected error: {type(exc).__name__}")
        upstream = fetched.upstream
        if target.sign_authn_requests and not upstream.want_authn_requests_signed:
            upstream = replace(upstream, want_authn_requests_signed=True)
        self._upstreams[target.name] = upstream
        fingerprints = _fingerprints(upstream)
        if fingerprints != status.certificates:
            log.info(
                "upstream %s: metadata refreshed, signing certificates now (SHA-256): %s",
                target.name, ", ".join(fingerprints),
            )  # fmt: skip
        delay = next_refresh_delay(target.settings, fetched, now, floor_seconds=self._floor)
        self._status[target.name] = replace(
            status,
            last_success=now,
            consecutive_failures=0,
            valid_until=upstream.valid_until,
            next_refresh=now + delay,
            certificates=fingerprints,
        )
        return True

    def _failed(self, target: RefreshTarget, status: RefreshStatus, now: datetime, reason: str) -> bool:
        failures = status.consecutive_failures + 1
        retry = min(
            target.settings.retry_seconds * 2 ** min(failures - 1, 16), target.settings.interval_seconds
        )
        kept = (
            f"keeping the copy fetched {status.last_success:%Y-%m-%dT%H:%M:%SZ}"
            if status.last_success
            else "keeping the copy loaded at start"
            if target.name in self._upstreams
            else "no copy to keep"
        )
        log.warning(
            "upstream %s: metadata refresh failed (%d in a row), %s; retry in %ds: %s",
            target.name, failures, kept, retry, reason,
        )  # fmt: skip
        self._status[target.name] = replace(
            status,
            last_failure=now,
            last_failure_reason=reason,
            consecutive_failures=failures,
            next_refresh=now + timedelta(seconds=max(retry, self._floor)),
        )
        return False

    # The schedule: one daemon thread for all targets; a slow IdP delays others by at most its timeout.

    def start(self) -> MetadataRefresher:
        if self._thread is None and self._targets:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="metadata-refresh", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            now = self._clock()
            due = [n for n, s in self._status.items() if s.next_refresh is None or s.next_refresh <= now]
            for name in due:
                if self._stopping.is_set():
                    return
                with self._locks[name]:
                    self._refresh(self._targets[name])
            upcoming = [s.next_refresh for s in self._status.values() if s.next_refresh is not None]
            wait = (min(upcoming) - self._clock()).total_seconds() if upcoming else 3600.0
            self._wake.wait(timeout=min(max(wait, 0.01), 3600.0))
            self._wake.clear()


def _fingerprints(upstream: UpstreamIdp) -> tuple[str, ...]:
    return tuple(fingerprint(cert, "sha256") for cert in upstream.certificates)
