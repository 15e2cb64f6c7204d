"""`broker check`: is this deployment ready to sign people in? One result per thing checked.

Config, signing keys (readable, RSA, private, matching their certificate), certificate expiry (broker, portals,
next certificates, upstream IdPs), upstream metadata, the state store and the credentials of Graph and the
LearnUpon API. `online=True` also makes one harmless call to Graph and to each LearnUpon API.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.claims.groups import graph_client_for
from broker.clients.graph import GraphError
from broker.clients.learnupon import LearnUponAuthError, LearnUponClient, LearnUponError
from broker.config import Config, load_config
from broker.config.provisioning import ProvisioningSettings
from broker.errors import ConfigError
from broker.keys import load_certificate_text
from broker.ops.cert_expiry import expired_certificate_advice
from broker.provisioning.sync import build_client
from broker.rules.trust import name_based
from broker.runtime import load_upstream
from broker.store.connect import open_store
from broker.tools.contrast import colour_contrast_findings

Status = Literal["OK", "WARN", "FAIL"]
CERT_WARN_DAYS = 30
METADATA_WARN_DAYS = 7
ONLINE_TIMEOUT = (5.0, 10.0)
_RANK = {"OK": 0, "WARN": 1, "FAIL": 2}


@dataclass(frozen=True)
class CheckResult:
    status: Status
    name: str  # what was checked, e.g. "key broker.signing"
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


def worst(results: list[CheckResult]) -> Status:
    return max((r.status for r in results), key=_RANK.__getitem__, default="OK")


def run_checks(
    config_path: str | Path,
    *,
    online: bool = False,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[CheckResult]:
    """Every check, in a stable order. A config that does not load is the only result."""
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [CheckResult("FAIL", "config", str(exc))]
    results = [
        CheckResult(
            "OK",
            "config",
            f"{config_path} is valid: {_count(len(config.portals), 'portal')}, "
            f"{_count(len(config.upstreams), 'upstream')}",
        )
    ]
    results += check_broker_settings(config, env)
    results += check_trust_boundaries(config)
    results += check_signing(config, now)
    results += check_upstreams(config, now)
    results += check_store(config)
    results += check_graph(config, env, online)
    results += check_learnupon(config, env, online)
    results += check_branding(config)
    return results


def check_branding(config: Config) -> list[CheckResult]:
    return [CheckResult(status, name, detail) for status, name, detail in colour_contrast_findings(config)]


# ---- broker settings ------------------------------------------------------------------------------------------


def check_broker_settings(config: Config, env: Mapping[str, str]) -> list[CheckResult]:
    broker = config.broker
    results = []
    if broker.base_url.startswith("http://") and not broker.demo:
        results.append(CheckResult("WARN", "base_url", f"{broker.base_url} is not HTTPS"))
    if not env.get(broker.secret_key_env):
        results.append(
            CheckResult(
                "WARN",
                "secret key",
                f"{broker.secret_key_env} is not set: each process signs its session cookie with a random key, "
                "so replicas forget each other's remembered IdP choice",
            )
        )
    return results


# ---- trust boundaries -----------------------------------------------------------------------------------------


def check_trust_boundaries(config: Config) -> list[CheckResult]:
    """Rules that trust Entra group display names (anyone can create a group with any name), routing rules on
    e-mail domains that an upstream does not own. Overlapping email_domains already fail the config."""
    results = []
    entra = {name for name, upstream in config.upstreams.items() if upstream.preset == "entra"}
    why = (
        "Entra group display names are neither unique nor protected (any user may create a Microsoft 365 "
        "group with the same name); name the group by its object id instead"
    )
    admin_entra = sorted(entra & set(config.admin.upstreams))
    if admin_entra and name_based(config.admin.groups):
        results.append(CheckResult("WARN", "admin.groups", f"{', '.join(name_based(config.admin.groups))} "
                                   f"matched by name for {', '.join(admin_entra)}: {why}"))  # fmt: skip
    if not config.admin.upstreams:
        results.append(CheckResult("OK", "admin.upstreams", "none: /admin only through the bootstrap token"))
    for name, portal in config.portals.items():
        portal_entra = sorted(entra & set(portal.upstream_names))
        names = name_based(portal.required_groups)
        if portal_entra and names:
            results.append(CheckResult("WARN", f"portals.{name}.required_groups",
                                       f"{', '.join(names)} matched by name for {', '.join(portal_entra)}: {why}"))  # fmt: skip
    unscoped = sorted(name for name, upstream in config.upstreams.items() if not upstream.email_domains)
    for index, rule in enumerate(config.routing.rules):
        if rule.email_domains and unscoped:
            results.append(CheckResult("WARN", f"routing.rules.{index}.email_domains",
                                       f"never matches users of {', '.join(unscoped)}: an upstream without "
                                       "email_domains owns no domain"))  # fmt: skip
    return results


# ---- keys and certificates ------------------------------------------------------------------------------------


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
            results.append(CheckResult("FAIL", f"cert {where}", f"{path}: cannot read: {_reason(exc)}"))
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
        return CheckResult("FAIL", name, f"{cert_path}: cannot read the certificate: {_reason(exc)}"), None
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
        return CheckResult("WARN", name, f"expires on {when}, in {_count(left.days, 'day')}")
    return CheckResult("OK", name, f"valid until {when} ({_count(left.days, 'day')})")


# ---- upstream IdPs --------------------------------------------------------------------------------------------


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
        detail = f"{origin}: entity {upstream.entity_id}, {_count(len(upstream.certificates), 'signing certificate')}"
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


# ---- state store ----------------------------------------------------------------------------------------------


def check_store(config: Config) -> list[CheckResult]:
    url = config.store.url
    if url.startswith("memory"):
        return [
            CheckResult("OK", "store", "memory:// (one process only; use Redis when several replicas run)")
        ]
    shown = _without_password(url)
    try:
        store = open_store(url)
        answered = store.ping()
        durability = store.durability() if answered else None
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the finding
        return [CheckResult("FAIL", "store", f"{shown}: {type(exc).__name__}: {exc}")]
    if not answered or durability is None:
        return [CheckResult("FAIL", "store", f"{shown}: Redis does not answer PING")]
    results = [CheckResult("OK", "store", f"{shown}: Redis answers PING")]
    settings = f"persistence {durability.persistence}, maxmemory-policy {durability.eviction_policy}"
    results += [
        CheckResult("FAIL", "store durability", f"{error} ({settings})") for error in durability.errors
    ]
    results += [CheckResult("WARN", "store durability", f"{w} ({settings})") for w in durability.warnings]
    if not durability.errors and not durability.warnings:
        results.append(CheckResult("OK", "store durability", settings))
    return results


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


# ---- credentials and, with online, one harmless call -----------------------------------------------------------


def check_graph(config: Config, env: Mapping[str, str], online: bool) -> list[CheckResult]:
    results = []
    for name, settings in config.upstreams.items():
        graph = settings.groups.graph
        if graph is None:
            continue
        label = f"graph upstreams.{name}"
        if not env.get(graph.client_secret_env):
            results.append(
                CheckResult(
                    "FAIL", label, f"client secret: environment variable {graph.client_secret_env} is not set"
                )
            )
            continue
        if not online:
            results.append(CheckResult("OK", label, f"client secret in {graph.client_secret_env}"))
            continue
        try:
            with graph_client_for(graph, env=env, budget=15.0) as client:
                # an ID no group has: a token request, then the same call a login makes, with its permission
                client.names_by_ids(["00000000-0000-0000-0000-000000000000"])
        except (GraphError, ConfigError, ValueError) as exc:
            results.append(CheckResult("FAIL", label, str(exc)))
            continue
        permission = "Directory.Read.All" if graph.mode == "getByIds" else "GroupMember.Read.All"
        results.append(
            CheckResult(
                "OK", label, f"token granted and {graph.mode} answered ({permission}) at {graph.graph_base}"
            )
        )
    return results


def check_learnupon(config: Config, env: Mapping[str, str], online: bool) -> list[CheckResult]:
    results = []
    for name, portal in config.portals.items():
        settings = portal.provisioning
        if not settings.enabled:
            continue
        label = f"learnupon portals.{name}"
        missing = [v for v in (settings.username_env, settings.password_env) if not v or not env.get(v)]
        if missing:
            results.append(
                CheckResult(
                    "FAIL",
                    label,
                    f"API key pair: environment variable(s) {', '.join(map(str, missing))} not set",
                )
            )
            continue
        base = settings.api_base_url(name)
        if not online:
            results.append(
                CheckResult("OK", label, f"API key pair in {settings.username_env} / {settings.password_env}")
            )
            continue
        client = build_client(name, settings, env, timeout=ONLINE_TIMEOUT, max_retries=1)
        try:
            with client.budget(20.0):
                # searching an address no one has changes nothing and needs only the API key pair
                client.find_user_by_email(f"broker-check-{secrets.token_hex(6)}@example.invalid")
                unknown = _unknown_enrollment_titles(client, settings)
        except LearnUponAuthError as exc:
            results.append(CheckResult("FAIL", label, f"{base}: the API key pair was refused ({exc})"))
            continue
        except LearnUponError as exc:
            results.append(CheckResult("FAIL", label, f"{base}: {exc}"))
            continue
        finally:
            client.session.close()
        limits = ""
        if client.rate_limit_remaining_minute is not None:
            limits = f"; rate limit left: {client.rate_limit_remaining_minute} this minute"
            if client.rate_limit_remaining_week is not None:
                limits += f", {client.rate_limit_remaining_week} this week"
        if unknown:
            results.append(CheckResult("FAIL", label, f"{base}: {'; '.join(unknown)}"))
            continue
        results.append(CheckResult("OK", label, f"{base}: API answered a user search{limits}"))
    return results


def _unknown_enrollment_titles(client: LearnUponClient, settings: ProvisioningSettings) -> list[str]:
    """Enrolment rules' course and learning path titles LearnUpon cannot match to exactly one (GET only)."""
    problems = []
    for index, rule in enumerate(settings.enrollments):
        for refs, find in (
            (rule.courses, client.find_course_id),
            (rule.learning_paths, client.find_learning_path_id),
        ):
            for ref in refs:
                if isinstance(ref, str):
                    try:
                        find(ref)
                    except LearnUponAuthError:
                        raise
                    except LearnUponError as exc:
                        problems.append(f"provisioning.enrollments.{index}: {exc}")
    return problems


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
