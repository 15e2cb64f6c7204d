"""The access review's plain data: a LearnUpon account, the category the review gives it, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from broker.clients.directory import parse_time

Category = Literal["entitled", "orphan", "never_signed_in", "inactive", "admin", "unknown"]
CATEGORIES: tuple[Category, ...] = ("entitled", "orphan", "never_signed_in", "inactive", "admin", "unknown")
CATEGORY_LABELS: dict[Category, str] = {
    "entitled": "entitled",
    "orphan": "orphan",
    "never_signed_in": "never signed in",
    "inactive": "inactive",
    "admin": "admin (never changed)",
    "unknown": "unknown (not acted on)",
}
Action = Literal["disable", "delete"]


@dataclass(frozen=True)
class Account:
    """A LearnUpon user as the API lists it (only what the review reads)."""

    id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    user_type: str = "learner"
    enabled: bool = True
    created_at: datetime | None = None
    last_sign_in_at: datetime | None = None
    sign_in_count: int = 0

    @classmethod
    def from_api(cls, user: dict[str, Any]) -> Account:
        return cls(
            id=int(user["id"]),
            email=str(user.get("email") or "").strip(),
            first_name=str(user.get("first_name") or ""),
            last_name=str(user.get("last_name") or ""),
            user_type=str(user.get("user_type") or "learner"),
            enabled=user.get("enabled") is not False,
            created_at=parse_time(user.get("created_at")),
            last_sign_in_at=parse_time(user.get("last_sign_in_at")),
            sign_in_count=int(user.get("sign_in_count") or 0),
        )


@dataclass(frozen=True)
class Finding:
    """One account's place in the review: its category, the reason in words, the change `--apply` would make
    (None: none), and what each directory said about it (`{"entra": "accountEnabled false", ...}`)."""

    account: Account
    category: Category
    reason: str
    action: Action | None = None
    directories: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        a = self.account
        return {
            "id": a.id,
            "email": a.email,
            "name": f"{a.first_name} {a.last_name}".strip(),
            "user_type": a.user_type,
            "enabled": a.enabled,
            "category": self.category,
            "reason": self.reason,
            "action": self.action,
            "last_sign_in_at": a.last_sign_in_at.isoformat() if a.last_sign_in_at else None,
            "directories": dict(self.directories),
        }
