"""Deep-link targets: only relative paths inside the portal are carried through a login."""

from __future__ import annotations

import re

MAX_TARGET_LENGTH = 512
# A path that starts with one slash, then no scheme tricks: no '//' prefix, no backslash, no control characters.
_SAFE_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*$")


def safe_target(target: str | None) -> str | None:
    """The target when it is a safe relative path, else None (callers refuse the login)."""
    if target is None or target == "":
        return None
    if (
        len(target) > MAX_TARGET_LENGTH
        or "\\" in target
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target)
    ):
        return None
    if not _SAFE_PATH.match(target):
        return None
    return target
