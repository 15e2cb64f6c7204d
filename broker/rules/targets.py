"""Deep-link targets: only relative paths inside the portal are carried through a login."""

from __future__ import annotations

import re
from urllib.parse import unquote

MAX_TARGET_LENGTH = 512
# A path that starts with one slash, then no scheme tricks: no '//' prefix, no backslash, no control characters.
_SAFE_PATH = re.compile(r"^/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?#]*$")


def _has_unsafe_characters(text: str) -> bool:
    return "\\" in text or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def _fully_decoded(path: str) -> str | None:
    """Percent-decoded until nothing changes (a later hop may decode again); None if still encoded after
    three rounds."""
    for _ in range(3):
        decoded = unquote(path)
        if decoded == path:
            return path
        path = decoded
    return None


def normalised_path(target: str) -> str | None:
    """The target's path as any server down the line could read it, or None when it could climb out of
    where the allow-list put it: `.`/`..` segments (encoded or not, with or without `;params`), backslashes,
    control characters or `//`, at any level of percent-encoding."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    decoded = _fully_decoded(path)
    if decoded is None or _has_unsafe_characters(decoded) or "//" in decoded:
        return None
    if any(segment.split(";", 1)[0] in (".", "..") for segment in decoded.split("/")):
        return None
    return decoded


def safe_target(target: str | None) -> str | None:
    """The target when it is a safe relative path, else None (callers refuse the login)."""
    if target is None or target == "":
        return None
    if len(target) > MAX_TARGET_LENGTH or _has_unsafe_characters(target):
        return None
    if not _SAFE_PATH.match(target) or normalised_path(target) is None:
        return None
    return target
