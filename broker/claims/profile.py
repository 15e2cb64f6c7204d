"""Per-portal output profile: which canonical fields and groups go out, under which SAML attribute names.

Everything the profile does not name is not sent. Each rule is a small function so a new rule is a new
function here, not an edit to a long one.
"""

from __future__ import annotations

import logging
from datetime import datetime

from broker.config import CustomDataField, PortalSettings
from broker.model import Claims
from broker.rules.portal_groups import portal_groups

log = logging.getLogger(__name__)

CANONICAL_FIELDS = ("email", "first_name", "last_name", "display_name", "subject", "object_id", "department")
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d")


def as_learnupon_date(value: str) -> str | None:
    """LearnUpon takes dates only as YYYY-MM-DD; other common forms are converted, the rest dropped."""
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return None


def source_values(claims: Claims, source: str) -> tuple[str, ...]:
    if source in CANONICAL_FIELDS:
        value = getattr(claims, source)
        return (value,) if value else ()
    return claims.extra.get(source, ())


def custom_data(claims: Claims, fields: list[CustomDataField]) -> dict[str, tuple[str, ...]]:
    attributes: dict[str, tuple[str, ...]] = {}
    for spec in fields:
        values = source_values(claims, spec.source)
        if spec.date:
            converted = tuple(d for d in (as_learnupon_date(v) for v in values) if d)
            if len(converted) != len(values):
                log.warning("custom data field %s: value is not a date, left out", spec.field)
            values = converted
        if values:
            attributes[spec.field] = values
    return attributes


def outgoing_attributes(claims: Claims, portal: PortalSettings) -> dict[str, tuple[str, ...]]:
    names = portal.attributes
    attributes: dict[str, tuple[str, ...]] = {}
    if names.email:
        attributes[names.email] = (claims.email,)
    if claims.first_name:
        attributes[names.first_name] = (claims.first_name,)
    if claims.last_name:
        attributes[names.last_name] = (claims.last_name,)
    groups = portal_groups(claims.groups, portal.groups)
    if names.groups and groups:
        attributes[names.groups] = groups
    attributes.update(custom_data(claims, portal.custom_data))
    for name, values in portal.static_attributes.items():
        attributes[name] = tuple(values)
    return attributes
