"""`broker check` of keys and certificates: signing keys (readable, RSA, private, matching their certificate),
certificate expiry (broker, portals, next certificates) and the upstream IdPs' metadata and certificates."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.config import Config
from broker.errors import ConfigError
from broker.keys import load_certificate_text
from broker.ops.cert_expiry import expired_certificate_advice
from broker.runtime import load_upstream
from broker.tools.check.result import CheckResult, Status, count, reason

CERT_WARN_DAYS = 30
METADATA_WARN_DAYS = 7


def check_signing(config: Config, now: datetime) -> list[CheckResult]:
    """Each signing key pair once (portals without their own key use the broker's), then next certificates."""
    results = []
    pairs = {"broker.signing": config.broker.signing}
    for name, portal in config.portals.items():
        if portal.signing is not None:
            pairs[f"portals.{name}.signing"] = portal.signing
    seen: set[tuple[str, str]] = set()
    for where, files in pairs.items():
        if (str(files.key), str(files.cert)) in seen:
            continue
        seen.add((str(files.key), str(files.cert)))
        result, cert = check_key_pair(where, Path(files.key), Path(files.cert))
        results.append(result)
        if cert is not None:
            results.append(check_expiry(f"cert {where}", cert, now))
    nexts = {"broker.next_certificate": config.broker.next_certificate}
    nexts.update({f"portals.{n}.next_certificate": p.next_certificate for n, p in config.portals.items()})
    for where, path in nexts.items():
        if path is None:
            continue
        try:
            cert = load_certificate_text(Path(path).read_text(encoding="ascii"))
        except (OSError, ValueError) as exc:
            results.append(CheckResult("FAIL", f"cert {where}", f"{path}: cannot read: {reason(exc)}"))
            continue
        results.append(check_expiry(f"cert {where}", cert, now))
    return results


def check_key_pair(
    where: str, key_path: Path, cert_path: Path
) -> tuple[CheckResult, x509.Certificate | None]:
    """Readable, RSA (2048 bits or more), not readable by group or others, and matching its certificate."""
    name = f"key {where}"
    try:
        key_bytes = key_path.read_bytes()
        mode = stat.S_IMODE(key_path.stat().st_mode)
    except OSError as exc:
        return CheckResult("FAIL", name, f"{key_path}: cannot read: {exc.strerror}"), None
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as exc:
        return CheckResult("FAIL", name, f"{key_path}: not an unencrypted PEM private key ({exc})"), None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        return CheckResult("FAIL", name, f"{cert_path}: cannot read the certificate: {reason(exc)}"), None
    if not isinstance(key, rsa.RSAPrivateKey):
        return CheckResult("FAIL", name, f"{key_path}: only RSA keys can sign SAML assertions here"), cert
    public = cert.public_key()
    if (
        not isinstance(public, rsa.RSAPublicKey)
        or public.public_numbers() != key.public_key().public_numbers()
    ):
        return CheckResult("FAIL", name, f"{cert_path} does not match the private key {key_path}"), cert
    summary = f"{key_path}: RSA {key.key_size} bits, matches {cert_path.name}, mode {mode:03o}"
    problems = []
    if mode & 0o077:
        problems.append(f"readable by group or others: chmod 600 {key_path}")
    if key.key_size < 2048:
        problems.append("shorter than 2048 bits")
    if problems:
        return CheckResult("WARN", name, f"{summary}; {'; '.join(problems)}"), cert
    return CheckResult("OK", name, summary), cert


def check_expiry(name: str, cert: x509.Certificate, now: datetime, *, spare: bool = False) -> CheckResult:
    """FAIL when expired (WARN when `spare`: another certificate still works), WARN under 30 days."""
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    left = not_after - now
    when = not_after.date().isoformat()
    if left <= timedelta(0):
        status: Status = "WARN" if spare else "FAIL"
        more = " (another certificate is still valid)" if spare else ""
        return CheckResult(status, name, f"expired on {when}{more}")
    if not_before > now:
        return CheckResult("WARN", name, f"not valid before {not_before.date().isoformat()}")
    if left < timedelta(days=CERT_WARN_DAYS):
        return CheckResult("WARN", name, f"expires on {when}, in {count(left.days, 'day')}")
    return CheckResult("OK", name, f"valid until {when} ({count(left.days, 'day')})")


def check_upstreams(config: Config, now: datetime) -> list[CheckResult]:
    results = []
    source = str(config.source or "<config>")
    for name, settings in config.upstreams.items():
        where = f"upstreams.{name}"
        try:
            upstream = load_upstream(name, settings, source)
        except ConfigError as exc:
            results.append(CheckResult("FAIL", f"metadata {where}", str(exc)))
            continue
        origin = settings.metadata_file or settings.metadata_url or "inline settings"
        detail = f"{origin}: entity {upstream.entity_id}, {count(len(upstream.certificates), 'signing certificate')}"
        status: Status = "OK"
        if upstream.valid_until is not None:
            until = upstream.valid_until.date().isoformat()
            if upstream.valid_until <= now:
                status, detail = "FAIL", f"{detail}; metadata expired (validUntil {until}): download it again"
            elif upstream.valid_until - now < timedelta(days=METADATA_WARN_DAYS):
                status, detail = "WARN", f"{detail}; metadata validUntil {until}: refresh it soon"
            else:
                detail = f"{detail}; validUntil {until}"
        results.append(CheckResult(status, f"metadata {where}", detail))
        valid = [c for c in upstream.certificates if c.not_valid_after_utc > now]
        for index, cert in enumerate(upstream.certificates, 1):
            label = f"cert {where}" + (f" #{index}" if len(upstream.certificates) > 1 else "")
            result = check_expiry(label, cert, now, spare=bool(valid))
            if result.status == "FAIL":
                result = _expired_upstream_certificate(result, name, settings.enforce_certificate_expiry)
            results.append(result)
    return results


def _expired_upstream_certificate(result: CheckResult, upstream: str, enforced: bool) -> CheckResult:
    """Every upstream certificate has expired: say what logins do now, and what to do about it."""
    now_what = (
        "logins signed with it are refused (enforce_certificate_expiry is on)"
        if enforced
        else "logins signed with it are still accepted, because the metadata lists it, and each is logged as "
        "a WARNING"
    )
    return CheckResult(
        "FAIL", result.name, f"{result.detail}: {now_what}; {expired_certificate_advice(upstream)}"
    )
