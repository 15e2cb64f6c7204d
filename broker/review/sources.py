"""Where a review reads from: each upstream's directory client (built from `upstreams.X.directory`), the
portal's LearnUpon API client (the key pair in `portals.X.provisioning`), and the portal's policy."""

from __future__ import annotations

import os
from collections.abc import Mapping

from broker.claims.groups import graph_client_for
from broker.clients.directory import Directory
from broker.clients.entra_directory import EntraDirectory
from broker.clients.learnupon import LearnUponClient
from broker.config import Config
from broker.config.review import EntraDirectorySettings, GoogleDirectorySettings, OktaDirectorySettings
from broker.errors import ConfigError
from broker.provisioning.sync import build_client
from broker.review.categorise import PortalPolicy

# a whole directory listing may take minutes; the per-request timeouts still apply within it
DIRECTORY_BUDGET_SECONDS = 900.0


def build_directory(config: Config, upstream: str, env: Mapping[str, str] = os.environ) -> Directory | None:
    """The directory client of one upstream, or None when `upstreams.<upstream>.directory` is not set."""
    settings = config.upstreams[upstream]
    directory = settings.directory
    where = f"upstreams.{upstream}.directory"
    if directory is None:
        return None
    if isinstance(directory, EntraDirectorySettings):
        graph = settings.groups.graph
        if graph is None:
            raise ConfigError(f"{where}: kind entra reads Microsoft Graph with upstreams.{upstream}.groups.graph, "
                              "which is not set")  # fmt: skip
        try:
            client = graph_client_for(graph, env=env, budget=DIRECTORY_BUDGET_SECONDS)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return EntraDirectory(client, static_map=settings.groups.static_map,
                              sign_in_activity=directory.sign_in_activity, budget=DIRECTORY_BUDGET_SECONDS)  # fmt: skip
    if isinstance(directory, OktaDirectorySettings):
        from broker.clients.okta_directory import OktaDirectory

        token = env.get(directory.token_env, "")
        if not token:
            raise ConfigError(
                f"{where}.token_env: environment variable {directory.token_env} is not set or empty"
            )
        return OktaDirectory(directory.org_url, token, budget=DIRECTORY_BUDGET_SECONDS)
    if isinstance(directory, GoogleDirectorySettings):
        from broker.clients.google_directory import GoogleDirectory

        path = env.get(directory.service_account_file_env, "")
        if not path:
            raise ConfigError(f"{where}.service_account_file_env: environment variable "
                              f"{directory.service_account_file_env} is not set or empty")  # fmt: skip
        try:
            return GoogleDirectory.from_key_file(
                path, admin_email=directory.admin_email, customer=directory.customer,
                api_base=directory.api_base, budget=DIRECTORY_BUDGET_SECONDS,
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: service account key {path}: {exc}") from None
    raise ConfigError(f"{where}: unknown kind")  # pragma: no cover - the model allows no other kind


def learnupon_client(config: Config, portal: str, env: Mapping[str, str] = os.environ) -> LearnUponClient:
    """The portal's API client: the review lists users and disables them with the provisioning key pair."""
    try:
        return build_client(portal, config.portals[portal].provisioning, env, timeout=(3.05, 30.0))
    except ConfigError as exc:
        raise ConfigError(
            f"portals.{portal}.provisioning (the API key pair the review uses): {exc}"
        ) from None


def portal_policy(config: Config, portal: str) -> PortalPolicy:
    """The portal's review policy. Only `required_groups` gate a login to a named portal (routing rules only
    choose a portal for /login), so they are the groups whose membership the review checks."""
    settings = config.portals[portal]
    return PortalPolicy(required_groups=tuple(settings.required_groups), settings=settings.review)
