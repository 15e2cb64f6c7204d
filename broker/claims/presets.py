"""Claim presets: each upstream IdP's attribute names → the broker's canonical Claims.

Entra and AD FS send claim URIs; Okta, Google, OneLogin and Salesforce send whatever names the admin typed,
so their presets list the spellings admins commonly use (matched without regard to case) and the YAML can
override them per upstream.
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


ADFS_CLAIMS = "http://schemas.xmlsoap.org/claims/"
ROLE_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
# eduPerson / X.500 attribute OIDs (urn:oid: names, as Shibboleth, SimpleSAMLphp and many universities send)
OID_MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
OID_GIVEN_NAME = "urn:oid:2.5.4.42"
OID_SURNAME = "urn:oid:2.5.4.4"
OID_DISPLAY_NAME = "urn:oid:2.16.840.1.113730.3.1.241"
OID_EPPN = "urn:oid:1.3.6.1.4.1.5923.1.1.1.6"
OID_IS_MEMBER_OF = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"
OID_DEPARTMENT = "urn:oid:2.5.4.11"

# Names are matched without regard to case (FirstName = firstName), so each list holds spellings, not casings.
_FIRST = (
    "firstName",
    "first_name",
    "givenName",
    "given_name",
    "fname",
    ENTRA_CLAIMS + "givenname",
    OID_GIVEN_NAME,
)
_LAST = ("lastName", "last_name", "surname", "sn", "familyName", "family_name", "lname", ENTRA_CLAIMS + "surname",
         OID_SURNAME)  # fmt: skip
_EMAIL_NAMES = ("email", "mail", "emailAddress", "email_address", ENTRA_CLAIMS + "emailaddress", OID_MAIL)
_DISPLAY = ("displayName", "display_name", OID_DISPLAY_NAME)
_GROUPS = ("groups", "group", "memberOf", "isMemberOf", OID_IS_MEMBER_OF)

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
    # Okta: admin-chosen names in the app's attribute statements; `user.login` often goes out as "username".
    "okta": ClaimNames(
        email=_EMAIL_NAMES,
        first_name=_FIRST,
        last_name=_LAST,
        display_name=_DISPLAY,
        groups=_GROUPS,
        upn=("username", "login", "userName", "user.login"),
    ),  # fmt: skip
    # Google Workspace: admin-chosen names mapped from directory fields; NameID is usually the primary email.
    "google": ClaimNames(
        email=(*_EMAIL_NAMES, "primaryEmail"),
        first_name=_FIRST,
        last_name=_LAST,
        display_name=_DISPLAY,
        groups=(*_GROUPS, "Groups"),
        department=("department", "Department"),
    ),  # fmt: skip
    # OneLogin: its parameter names ("User.email", "User.FirstName", …) or admin-chosen ones.
    "onelogin": ClaimNames(
        email=("User.email", *_EMAIL_NAMES),
        first_name=("User.FirstName", *_FIRST),
        last_name=("User.LastName", *_LAST),
        display_name=_DISPLAY,
        groups=("memberOf", "User.MemberOf", *_GROUPS),
        department=("department", "User.Department"),
    ),  # fmt: skip
    # AD FS: claim type URIs from its claim rules; "Token-Groups" rules send group names as .../claims/Group.
    "adfs": ClaimNames(
        email=(ENTRA_CLAIMS + "emailaddress", ADFS_CLAIMS + "EmailAddress"),
        first_name=(ENTRA_CLAIMS + "givenname",),
        last_name=(ENTRA_CLAIMS + "surname",),
        display_name=(ENTRA_CLAIMS + "name", ADFS_CLAIMS + "CommonName"),
        groups=(ADFS_CLAIMS + "Group", ROLE_CLAIM),
        department=(ENTRA_CLAIMS + "department", "department"),
        upn=(ENTRA_CLAIMS + "upn", ADFS_CLAIMS + "UPN"),
    ),
    # Salesforce as IdP: userId, username, email, is_portal_user by default; names and groups when added.
    "salesforce": ClaimNames(
        email=("email", "User.Email"),
        first_name=("User.FirstName", *_FIRST),
        last_name=("User.LastName", *_LAST),
        display_name=("User.Name", *_DISPLAY),
        groups=(*_GROUPS, "profile", "role"),
        object_id=("userId", "User.Id"),
        upn=("username", "User.Username"),
        extra=("is_portal_user",),
    ),  # fmt: skip
    "generic": ClaimNames(
        email=_EMAIL_NAMES,
        first_name=_FIRST,
        last_name=_LAST,
        display_name=_DISPLAY,
        groups=_GROUPS,
        department=("department", "ou", OID_DEPARTMENT),
        upn=("eduPersonPrincipalName", OID_EPPN, "upn"),
    ),  # fmt: skip
}


class NoUsableEmail(LoginRefused):
    """The upstream sent no attribute (nor NameID) usable as the user's e-mail address."""

    check = "email"


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 254


def _folded(attributes: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Attribute names folded to lower case (IdP admins type FirstName or firstName alike); values of names
    that differ only by case are kept together, in document order."""
    folded: dict[str, tuple[str, ...]] = {}
    for name, values in attributes.items():
        key = name.casefold()
        folded[key] = folded.get(key, ()) + tuple(values)
    return folded


def _first(attributes: Mapping[str, tuple[str, ...]], names: tuple[str, ...]) -> str:
    for name in names:
        for value in attributes.get(name.casefold(), ()):
            if value.strip():
                return value.strip()
    return ""


def _all(attributes: Mapping[str, tuple[str, ...]], names: tuple[str, ...]) -> tuple[str, ...]:
    values: list[str] = []
    for name in names:
        values.extend(v.strip() for v in attributes.get(name.casefold(), ()) if v.strip())
    return tuple(dict.fromkeys(values))


def choose_email(identity: Identity, names: ClaimNames) -> str:
    """emailaddress claim → NameID when it is an email → UPN claim; none usable is a refusal."""
    attributes = _folded(identity.attributes)
    candidates = [
        _first(attributes, names.email),
        identity.name_id,
        _first(attributes, names.upn),
    ]
    for candidate in candidates:
        if candidate and is_email(candidate):
            return candidate.lower()
    raise NoUsableEmail(
        f"no usable email in the assertion from {identity.issuer} (NameID {identity.name_id!r})"
    )


def map_claims(identity: Identity, names: ClaimNames) -> Claims:
    """Read the canonical fields; `extra` keeps attributes an admin asked for by name."""
    attributes = _folded(identity.attributes)
    return Claims(
        email=choose_email(identity, names),
        first_name=_first(attributes, names.first_name),
        last_name=_first(attributes, names.last_name),
        display_name=_first(attributes, names.display_name),
        groups=_all(attributes, names.groups),
        subject=identity.name_id,
        object_id=_first(attributes, names.object_id),
        department=_first(attributes, names.department),
        extra={name: attributes[name.casefold()] for name in names.extra if name.casefold() in attributes},
    )


def groups_overage_signalled(identity: Identity, names: ClaimNames) -> bool:
    """Entra sends a groups.link claim instead of groups when a user is in too many groups (150 in SAML);
    a response with no groups claim at all is treated the same, so the lookup can fill it in."""
    attributes = _folded(identity.attributes)
    return ENTRA_GROUPS_LINK.casefold() in attributes or not any(
        name.casefold() in attributes for name in names.groups
    )


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
