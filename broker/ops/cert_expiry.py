"""Loud notice when a login was accepted with an upstream signing certificate past its end date.

Metadata is the trust anchor (as in Shibboleth SP and SimpleSAMLphp), so the login goes through; but someone
must act before the IdP's admins rotate the key for real: a WARNING (at most one per upstream every few
minutes, across replicas), a counter, a red row on the admin page and a failing `broker check`.
"""

from __future__ import annotations

import logging
from datetime import datetime

from cryptography import x509

from broker.keys import fingerprint
from broker.runtime import Runtime
from broker.store import keys

log = logging.getLogger("broker.certificates")

WARN_EVERY_SECONDS = 300


def expired_certificate_advice(upstream: str) -> str:
    return (
        f"load the IdP's current metadata (with its new signing certificate) for upstream {upstream}, "
        f"or set upstreams.{upstream}.enforce_certificate_expiry: true to refuse such logins"
    )


def note_expired_certificate(rt: Runtime, upstream: str, certificate: x509.Certificate) -> None:
    rt.metrics.expired_certificate_logins.labels(upstream).inc()
    # store.add succeeds for one caller per period, whichever replica it is: one line, not one per login.
    if rt.store.add(keys.expired_certificate_warning(upstream), b"1", WARN_EVERY_SECONDS):
        log.warning(
            "login accepted with an EXPIRED signing certificate of upstream %s (SHA-256 %s, expired %s): %s",
            upstream,
            fingerprint(certificate, "sha256"),
            certificate.not_valid_after_utc.date().isoformat(),
            expired_certificate_advice(upstream),
            extra={"upstream": upstream, "check": "certificate_expiry"},
        )


def expired_certificates(certificates: tuple[x509.Certificate, ...], now: datetime) -> list[x509.Certificate]:
    return [cert for cert in certificates if cert.not_valid_after_utc < now]
