"""Names and e-mail domains in broker.yaml: portal names, `email_domains` entries and which domains they cover."""

from __future__ import annotations

import re

PORTAL_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# An e-mail domain an upstream may assert: `contoso.com`, or `*.contoso.com` for every subdomain (not itself).
EMAIL_DOMAIN = re.compile(
    r"^(\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"
)


def domain_in_scope(domain: str, entry: str) -> bool:
    """`entry` (an `email_domains` item) covers `domain`: equal, or a subdomain of a `*.` entry."""
    domain = domain.lower().rstrip(".")
    if entry.startswith("*."):
        return domain.endswith(entry[1:])
    return domain == entry


def scope_entries_overlap(first: str, second: str) -> bool:
    """Some domain is covered by both entries (so two upstreams could assert the same address)."""
    a_wild, b_wild = first.startswith("*."), second.startswith("*.")
    if not a_wild and not b_wild:
        return first == second
    if a_wild and not b_wild:
        return domain_in_scope(second, first)
    if b_wild and not a_wild:
        return domain_in_scope(first, second)
    a, b = first[2:], second[2:]
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def domain_entries(value: list[str]) -> list[str]:
    entries = []
    for raw in value:
        entry = raw.strip().lower().lstrip("@").rstrip(".")
        if not EMAIL_DOMAIN.match(entry):
            raise ValueError(
                f"{raw!r} is not a domain name (like contoso.com, or *.contoso.com for subdomains)"
            )
        entries.append(entry)
    return entries
