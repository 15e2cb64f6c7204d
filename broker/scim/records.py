"""Pure helpers about stored SCIM records: versions, the values that must be unique, work e-mails, members."""

from __future__ import annotations

import datetime
from typing import Any

from scim2_models import ResourceType

from broker.scim.filters import CASE_EXACT
from broker.scim.state import value_key


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def next_version(version: str | None) -> str:
    digits = "".join(c for c in version or "" if c.isdigit())
    return f'W/"{int(digits or 0) + 1}"'


def kind_of(resource_type: ResourceType) -> str:
    """The resource type's name ("User", "Group"); the SCIM library types it as optional."""
    if resource_type.name is None:
        raise ValueError("a SCIM resource type without a name")
    return resource_type.name


def unique_values(kind: str, data: dict[str, Any]) -> dict[str, str]:
    """Index name → value digest of the values that must be unique in a tenant."""
    names = ("userName", "externalId") if kind == "User" else ("displayName", "externalId")
    return {
        name: value_key(str(data[name]), case_exact=name in CASE_EXACT) for name in names if data.get(name)
    }


def work_emails(data: dict[str, Any]) -> list[str]:
    return [
        value_key(str(e["value"]))
        for e in data.get("emails") or []
        if isinstance(e, dict) and e.get("value") and e.get("type") in (None, "work")
    ]


def member_ids(data: dict[str, Any]) -> list[str]:
    return [str(m["value"]) for m in data.get("members") or [] if isinstance(m, dict) and m.get("value")]


def same(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Equal but for meta (member order does not count)."""

    def strip(data: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in data.items() if k != "meta"}
        if "members" in data:
            data["members"] = sorted(data["members"] or [], key=lambda m: str(m.get("value")))
        return data

    return strip(before) == strip(after)
