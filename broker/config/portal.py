"""broker.yaml's `portals` (one LearnUpon portal each: keys, attributes, groups, provisioning) and `routing`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from broker.config.base import StrictModel
from broker.config.domains import domain_entries
from broker.config.pages import Branding, LocalizedText, SupportContact, Text, optional_language
from broker.config.provisioning import ProvisioningSettings
from broker.config.review import ReviewSettings
from broker.config.scim import PortalScimSettings
from broker.config.service import KeyFiles


class PortalAttributes(StrictModel):
    """SAML attribute names the portal expects (LearnUpon lets admins choose the first/last name ones)."""

    first_name: str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
    last_name: str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
    email: str | None = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
    groups: str | None = "groups"


class GroupProfile(StrictModel):
    """Which group names a portal receives (see broker.rules.portal_groups). Applied in order: allow-list,
    prefix stripping, renaming, then `add`. The same list goes into the assertion and into pre-provisioning."""

    allow: list[str] = Field(default_factory=list, description="names or fnmatch patterns; empty: all groups")
    strip_prefixes: list[str] = Field(default_factory=list)
    rename: dict[str, str] = Field(default_factory=dict, description="case-insensitive: name → new name")
    add: list[str] = Field(default_factory=list, description="groups every user of the portal gets")


class CustomDataField(StrictModel):
    """A LearnUpon custom user data field: the SAML attribute name must equal the LearnUpon field name."""

    field: str
    source: str = Field(
        description="a canonical field (department, display_name, …) or an upstream attribute name"
    )
    date: bool = Field(False, description="send as YYYY-MM-DD, as LearnUpon requires for dates")


class PortalSettings(StrictModel):
    """A LearnUpon portal that trusts the broker as its IdP."""

    upstream: str | None = Field(None, description="the one upstream IdP (shorthand for upstreams: [name])")
    upstreams: list[str] = Field(default_factory=list, description="several: users pick on a discovery page")
    display_name: Text | None = None
    description: Text = LocalizedText("")
    # the learner pages (broker/config/pages.py): these win over learner_pages' defaults
    default_language: str | None = Field(
        None, description="used when the browser asks for no language we have"
    )
    support: SupportContact | None = None
    branding: Branding = Field(default_factory=Branding)
    no_access_message: Text | None = Field(None, description="default: routing.no_access_message")
    hosts: list[str] = Field(default_factory=list, description="host names whose /login leads to this portal")
    required_groups: list[str] = Field(default_factory=list, description="any of these (names or patterns)")
    targets: list[str] = Field(default_factory=lambda: ["/*"], description="deep-link path patterns allowed")
    landing_path: str | None = Field(None, description="RelayState sent when the login carries no target")
    acs_url: str | None = None
    audience: str | None = None
    signing: KeyFiles | None = None
    next_certificate: Path | None = Field(None, description="published before a key rollover")
    algorithm: Literal["rsa-sha256", "rsa-sha1"] = "rsa-sha256"
    sign_response: bool = False
    # Factories, not shared instances: pydantic deep-copies an unhashable default for every portal, which
    # made validating 1,000 portals cost ~0.3 s (bench/routing.py)
    attributes: PortalAttributes = Field(default_factory=PortalAttributes)
    groups: GroupProfile = Field(default_factory=GroupProfile)
    static_attributes: dict[str, list[str]] = Field(default_factory=dict)
    custom_data: list[CustomDataField] = Field(default_factory=list)
    provisioning: ProvisioningSettings = Field(default_factory=ProvisioningSettings)
    # email_domains entries that several of this portal's upstreams may all assert (an explicit exception)
    shared_email_domains: list[str] = Field(default_factory=list)
    # The first upstream that brings a user here owns the account; another one is refused unless `allow`.
    account_linking: Literal["refuse", "allow"] = "refuse"

    @field_validator("shared_email_domains")
    @classmethod
    def _shared_domains(cls, value: list[str]) -> list[str]:
        return domain_entries(value)

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return optional_language(value)

    scim: PortalScimSettings = Field(default_factory=PortalScimSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)

    @model_validator(mode="after")
    def _some_upstream(self) -> PortalSettings:
        if (self.upstream is None) == (not self.upstreams):
            raise ValueError("give either upstream: NAME or upstreams: [NAME, ...]")
        if self.landing_path is not None and not self.landing_path.startswith("/"):
            raise ValueError("landing_path must be a relative path starting with /")
        for name in (*self.provisioning.managed_groups, *self.provisioning.managed_group_patterns):
            prefix = next((p for p in self.groups.strip_prefixes if name.lower().startswith(p.lower())), None)
            if prefix is not None:
                raise ValueError(
                    f"provisioning: managed group {name!r} can never match: managed groups are named as the "
                    f"portal receives them, after strip_prefixes removed {prefix!r}"
                )
        groups_attribute = self.attributes.groups
        if groups_attribute and groups_attribute in self.static_attributes:
            # a second source of groups would make the assertion and pre-provisioning disagree
            raise ValueError(
                f"static_attributes.{groups_attribute}: give static groups in groups.add, so the assertion "
                "and pre-provisioning use the same list"
            )
        return self

    @property
    def upstream_names(self) -> list[str]:
        return [self.upstream] if self.upstream else list(self.upstreams)


class RoutingRule(StrictModel):
    """For /login with no portal: the first rule whose conditions all hold decides the portal(s)."""

    portals: list[str] = Field(min_length=1, description="several: the user picks on a portal picker")
    groups: list[str] = Field(default_factory=list, description="user is in any of these (names or patterns)")
    email_domains: list[str] = Field(default_factory=list)
    attributes: dict[str, list[str]] = Field(default_factory=dict, description="field or attribute → values")


class RoutingSettings(StrictModel):
    rules: list[RoutingRule] = Field(default_factory=list)
    default_upstream: str | None = None
    no_access_message: Text = LocalizedText(
        "Your account has no access to a learning portal here. Please contact your IT service desk."
    )
