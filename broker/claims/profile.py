"""Per-portal output profile: which canonical fields go out under which SAML attribute names."""

from __future__ import annotations

from broker.config import PortalAttributes
from broker.model import Claims


def outgoing_attributes(claims: Claims, names: PortalAttributes) -> dict[str, tuple[str, ...]]:
    """Only what the profile names is sent; empty values are left out rather than sent blank."""
    attributes: dict[str, tuple[str, ...]] = {}
    if names.email:
        attributes[names.email] = (claims.email,)
    if claims.first_name:
        attributes[names.first_name] = (claims.first_name,)
    if claims.last_name:
        attributes[names.last_name] = (claims.last_name,)
    if names.groups and claims.groups:
        attributes[names.groups] = claims.groups
    return attributes
