"""`broker check` of the configuration itself: broker settings, trust boundaries, the state store."""

from __future__ import annotations

from collections.abc import Mapping

from broker.config import Config
from broker.rules.trust import name_based
from broker.store.connect import open_store
from broker.tools.check.result import CheckResult


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
    for index, client in enumerate(config.scim.clients if config.scim.enabled else []):
        if client.upstream is None:
            results.append(CheckResult("WARN", f"scim.clients.{index}.upstream",
                                       f"not set for {client.name}: it may only write addresses no upstream's "
                                       "email_domains claims, and take no account a login brought; name the "
                                       "upstream it speaks for"))  # fmt: skip
    return results


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
