"""The one answer to "which groups does this portal get for this user?": used by the outgoing assertion, the
provisioning plan, `broker simulate`, the admin trace and bulk provisioning, so they can never disagree.

LearnUpon's "Sync group with SAML SSO" adds a user to every synced group the assertion names and removes them
from every synced group it does not name, so pre-provisioning must prepare exactly the groups the assertion will
carry.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.config import GroupProfile
from broker.rules.names import matches_any


def portal_groups(groups: Iterable[str], profile: GroupProfile) -> tuple[str, ...]:
    """The IdP's group names → the portal's: allow-list (names or patterns), prefix stripping, renaming (all
    case-insensitive), then the portal's static additions. Blank names and case-insensitive duplicates are
    dropped; the first spelling and the order are kept."""
    renames = {source.lower(): target for source, target in profile.rename.items()}
    result: dict[str, str] = {}
    for raw in groups:
        name = str(raw).strip()
        if not name or (profile.allow and not matches_any([name], profile.allow)):
            continue
        for prefix in profile.strip_prefixes:
            if name.lower().startswith(prefix.lower()) and len(name) > len(prefix):
                name = name[len(prefix) :].strip()
                break
        name = renames.get(name.lower(), name)
        result.setdefault(name.lower(), name)
    for added in profile.add:
        name = added.strip()
        if name:
            result.setdefault(name.lower(), name)
    return tuple(result.values())
