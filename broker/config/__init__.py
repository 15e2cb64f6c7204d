"""The configuration layer, at the bottom: broker.yaml's models and loading. It imports no feature module
(claims, provisioning, saml, ops, web); they import their settings from here."""

from broker.config.settings import (
    PORTAL_NAME,
    AdminSettings,
    BrokerSettings,
    ClaimNameOverrides,
    Config,
    CustomDataField,
    GroupProfile,
    KeyFiles,
    PortalAttributes,
    PortalSettings,
    RateLimitSettings,
    RoutingRule,
    RoutingSettings,
    StoreSettings,
    UpstreamSettings,
    config_from_dict,
    load_config,
    secret_from_env,
)

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
    "config_from_dict",
    "load_config",
    "secret_from_env",
]
