"""The configuration layer, at the bottom: broker.yaml's models and loading. It imports no feature module
(claims, provisioning, saml, ops, web); they import their settings from here."""

from broker.config.domains import PORTAL_NAME, domain_in_scope, scope_entries_overlap
from broker.config.portal import (
    CustomDataField,
    GroupProfile,
    PortalAttributes,
    PortalSettings,
    RoutingRule,
    RoutingSettings,
)
from broker.config.service import AdminSettings, BrokerSettings, KeyFiles, RateLimitSettings, StoreSettings
from broker.config.settings import Config, config_from_dict, load_config, secret_from_env
from broker.config.upstream import ClaimNameOverrides, UpstreamSettings

__all__ = [
    "PORTAL_NAME",
    "AdminSettings",
    "BrokerSettings",
    "ClaimNameOverrides",
    "Config",
    "CustomDataField",
    "GroupProfile",
    "KeyFiles",
    "PortalAttributes",
    "PortalSettings",
    "RateLimitSettings",
    "RoutingRule",
    "RoutingSettings",
    "StoreSettings",
    "UpstreamSettings",
    "domain_in_scope",
    "scope_entries_overlap",
    "config_from_dict",
    "load_config",
    "secret_from_env",
]
