"""Reading LearnUpon's answers: the list or the new id in a body, what the API said, a numeric header."""

from __future__ import annotations

from typing import Any

import requests

from broker.clients.http import json_or_none
from broker.clients.learnupon.errors import LearnUponError


def int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def message_of(response: requests.Response) -> str:
    """What the API said, short: `message` / `error` / `errors` of a JSON body, else the start of the text."""
    data = json_or_none(response)
    if data is None:
        return response.text[:200].strip()
    if isinstance(data, dict):
        for key in ("message", "error", "errors", "Message"):
            if data.get(key):
                return str(data[key])[:300]
    return str(data)[:200]


def list_of(data: Any, key: str) -> list[dict[str, Any]]:
    """The list in `{"user": [...]}`-style answers (tolerating a bare list). Where the key is not documented
    (learning paths), an answer holding exactly one list is taken whatever its key."""
    if isinstance(data, list):
        return [x for x in data if isinstance(x, dict)]
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        value = data.get(key, lists[0] if len(lists) == 1 else None)
        if isinstance(value, list):
            return [x for x in value if isinstance(x, dict)]
        if isinstance(value, dict):
            return [value]
    return []


def id_of(data: Any, key: str, method: str, path: str) -> int:
    """The new record's id: `{"id": N}` (documented for users), tolerating `{"group": {"id": N}}`."""
    if isinstance(data, dict):
        if data.get("id") is not None:
            return int(data["id"])
        for k in (key, key.capitalize()):
            inner = data.get(k)
            if isinstance(inner, dict) and inner.get("id") is not None:
                return int(inner["id"])
    raise LearnUponError(f"LearnUpon {method} {path}: answer has no id", method=method, path=path)
