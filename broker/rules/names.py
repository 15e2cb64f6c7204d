"""Matching values (group names, attribute values) against what an admin wrote in the config: exact names or
shell-style patterns (`Sales*`), always case-insensitively, the same way everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase


def matches_any(values: Iterable[str], patterns: Iterable[str]) -> bool:
    """True when any value matches any name or pattern."""
    lowered_patterns = [pattern.lower() for pattern in patterns]
    return any(fnmatchcase(value.lower(), pattern) for value in values for pattern in lowered_patterns)
