"""`broker check` of the credentials of Graph and the LearnUpon API; with `online`, one harmless call to each."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from broker.claims.groups import graph_client_for
from broker.clients.graph import GraphError
from broker.clients.learnupon import LearnUponAuthError, LearnUponClient, LearnUponError
from broker.config import Config
from broker.config.provisioning import ProvisioningSettings
from broker.errors import ConfigError
from broker.provisioning.sync import build_client
from broker.tools.check.result import CheckResult

ONLINE_TIMEOUT = (5.0, 10.0)


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
