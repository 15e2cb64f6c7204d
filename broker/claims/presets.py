"""Claim presets: each upstream IdP's attribute names → the broker's canonical Claims.

Entra sends fixed claim URIs; Okta, Google and OneLogin send whatever names the admin typed, so their
presets are sensible defaults that the YAML can override per upstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from broker.errors import LoginRefused
from broker.model import Claims, Identity

ENTRA_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
MS_CLAIMS = "http://schemas.microsoft.com/identity/claims/"
ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
ENTRA_GROUPS_LINK = "http://schemas.microsoft.com/claims/groups.link"

_EMAIL = re.compile(r"^[^@\s<>\"'\\]+@[^@\s<>\"'\\]+\.[^@\s<>\"'\\]+$")


@dataclass(frozen=True)
class ClaimNames:
    """For each canonical field, the attribute names to try, in order."""

    email: tuple[str, ...] = ("email",)
    first_name: tuple[str, ...] = ("firstName",)
    last_name: tuple[str, ...] = ("lastName",)
    display_name: tuple[str, ...] = ("displayName",)
    groups: tuple[str, ...] = ("groups",)
    object_id: tuple[str, ...] = ()
    department: tuple[str, ...] = ("department",)
    upn: tuple[str, ...] = ()
    extra: tuple[str, ...] = field(default=())


PRESETS: dict[str, ClaimNames] = {
    "entra": ClaimNames(
        email=(ENTRA_CLAIMS + "emailaddress",),
        first_name=(ENTRA_CLAIMS + "givenname",),
        last_name=(ENTRA_CLAIMS + "surname",),
        display_name=(MS_CLAIMS + "displayname",),
        groups=(ENTRA_GROUPS,),
        object_id=(MS_CLAIMS + "objectidentifier",),
        department=(ENTRA_CLAIMS + "department", "department"),
        upn=(ENTRA_CLAIMS + "name",),
    ),
    "okta": ClaimNames(),
    "google": ClaimNames(first_name=("firstName", "first_name"), last_name=("lastName", "last_name")),
    "onelogin": ClaimNames(
        email=("email", "User.email"),
        first_name=("firstName", "User.FirstName"),
        last_name=("lastName", "User.LastName"),
        groups=("groups", "memberOf"),
    ),
    "generic": ClaimNames(
        email=("email", "mail", "urn:oid:0.9.2342.19200300.100.1.3", ENTRA_CLAIMS + "emailaddress"),
        first_name=("firstName", "givenName", "urn:oid:2.5.4.42", ENTRA_CLAIMS + "givenname"),
        last_name=("lastName", "sn", "surname", "urn:oid:2.5.4.4", ENTRA_CLAIMS + "surname"),
    ),
}


class NoUsableEmail(LoginRefused):
    check = "email"
    public_message = (
        "Your identity provider did not send an email address, so we cannot sign you in to the learning "
        "portal. Please contact your IT administrator."
    )


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


def _first(attributes: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> str:
    for name in names:
        for value in attributes.get(name, ()):
            if value.strip():
                return value.strip()
    return ""


def _all(attributes: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> tuple[str, ...]:
    values: list[str] = []
    for name in names:
        values.extend(v.strip() for v in attributes.get(name, ()) if v.strip())
    return tuple(dict.fromkeys(values))


def choose_email(identity: Identity, names: ClaimNames) -> str:
    """emailaddress claim → NameID when it is an email → UPN claim; none usable is a refusal."""
    candidates = [
        _first(identity.attributes, names.email),
        identity.name_id,
        _first(identity.attributes, names.upn),
    ]
    for candidate in candidates:
        if candidate and is_email(candidate):
            return candidate.lower()
    raise NoUsableEmail(
        f"no usable email in the assertion from {identity.issuer} (NameID {identity.name_id!r})"
    )


def map_claims(identity: Identity, names: ClaimNames) -> Claims:
    """Read the canonical fields; `extra` keeps attributes an admin asked for by name."""
    attributes = identity.attributes
    return Claims(
        email=choose_email(identity, names),
        first_name=_first(attributes, names.first_name),
        last_name=_first(attributes, names.last_name),
        display_name=_first(attributes, names.display_name),
        groups=_all(attributes, names.groups),
        subject=identity.name_id,
        object_id=_first(attributes, names.object_id),
        department=_first(attributes, names.department),
        extra={name: attributes[name] for name in names.extra if name in attributes},
    )


def groups_overage_signalled(identity: Identity, names: ClaimNames) -> bool:
    """Entra sends a groups.link claim instead of groups when a user is in too many groups (150 in SAML);
    a response with no groups claim at all is treated the same, so the lookup can fill it in."""
    attributes = identity.attributes
    return ENTRA_GROUPS_LINK in attributes or not any(name in attributes for name in names.groups)


def claim_names_for(
    preset: str, overrides: Mapping[str, Sequence[str] | None], extra: Iterable[str] = ()
) -> ClaimNames:
    """The preset's names with the admin's overrides; `extra` attributes are kept for per-portal rules."""
    base = PRESETS[preset]
    changes = {
        field: tuple(value) for field, value in overrides.items() if field != "extra" and value is not None
    }
    keep = tuple(dict.fromkeys([*base.extra, *(overrides.get("extra") or ()), *extra]))
    return replace(base, **changes, extra=keep)
