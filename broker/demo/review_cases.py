"""The demo's planted access-review cases: LearnUpon accounts in the `academy` portal whose owners left, were
disabled or suspended upstream, or never used their licence — and the directory entries (fake Entra, fake Okta)
that make them so. `broker review academy` reports each with its category and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broker.demo.fake_okta import okta_user
from broker.demo.learnupon_state import LearnUponState

OKTA_API_TOKEN = "00demo-okta-api-token"  # noqa: S105 - the demo fake's token, on loopback only

# email → (what the demo shows, the category the review must give it)
PLANTED = {
    "former.employee@contoso.example": ("ex-employee, missing from Entra", "orphan"),
    "dana.disabled@contoso.example": ("Entra account disabled", "orphan"),
    "quinn.deleted@contoso.example": ("Entra account deleted", "orphan"),
    "riley.suspended@fabrikam.example": ("Okta user suspended", "orphan"),
    "nico.newhire@contoso.example": ("never signed in", "never_signed_in"),
    "lee.longago@contoso.example": ("last signed in 200 days ago", "inactive"),
    "taylor.active@contoso.example": ("signed in last week", "entitled"),
    "morgan.admin@contoso.example": ("LearnUpon admin, not in any directory", "admin"),
}


def _iso(days_ago: int, now: datetime) -> str:
    return (now - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_users(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Entra users only the directory knows (they do not sign in through the test IdP)."""
    now = now or datetime.now(UTC)

    def user(email: str, first: str, last: str, enabled: bool = True, signed_in: int | None = None) -> dict:
        activity = {"lastSignInDateTime": _iso(signed_in, now)} if signed_in is not None else None
        return {"mail": email, "userPrincipalName": email, "givenName": first, "surname": last,
                "accountEnabled": enabled, "signInActivity": activity}  # fmt: skip

    return {
        "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e01": user(
            "dana.disabled@contoso.example", "Dana", "Ellis", False, 120
        ),
        "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e02": user(
            "nico.newhire@contoso.example", "Nico", "Reyes", True, 2
        ),
        "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e03": user("lee.longago@contoso.example", "Lee", "Park", True, 1),
        "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e04": user(
            "taylor.active@contoso.example", "Taylor", "Brooks", True, 0
        ),
    }


def graph_deleted_users(now: datetime | None = None) -> dict[str, dict[str, Any]]:
    now = now or datetime.now(UTC)
    return {
        "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e05": {
            "mail": "quinn.deleted@contoso.example",
            "userPrincipalName": "6f1d2c3b4a594e8d9c7b1a2b3c4d5e05quinn.deleted@contoso.example",
            "givenName": "Quinn",
            "surname": "Hart",
            "deletedDateTime": _iso(10, now),
        }
    }


def okta_directory(okta_people: list[tuple[str, str, str, str]]) -> tuple[list[dict], dict]:
    """Okta users (the test IdP's, active, plus a suspended one) and groups; people are (id, email, first, last)."""
    users = [okta_user(uid, email, first, last, last_login="2026-11-20T08:00:00.000Z")
             for uid, email, first, last in okta_people]  # fmt: skip
    users.append(
        okta_user("00u1demo0riley", "riley.suspended@fabrikam.example", "Riley", "Stone", "SUSPENDED")
    )
    groups = {
        "00g1demo0partners": ("Partners", [u["id"] for u in users]),
        "00g1demo0sales": (
            "Sales Team",
            [uid for uid, email, *_ in okta_people if email.startswith("jordan")],
        ),
    }
    return users, groups


def plant_accounts(state: LearnUponState, now: datetime | None = None) -> None:
    """The planted LearnUpon accounts of the academy portal, with their pasts."""
    now = now or datetime.now(UTC)
    history = {
        "former.employee@contoso.example": (400, 30),
        "dana.disabled@contoso.example": (300, 120),
        "quinn.deleted@contoso.example": (500, 12),
        "riley.suspended@fabrikam.example": (200, 45),
        "nico.newhire@contoso.example": (60, None),
        "lee.longago@contoso.example": (700, 200),
        "taylor.active@contoso.example": (365, 6),
        "morgan.admin@contoso.example": (900, 1),
    }
    for email, (created, signed_in) in history.items():
        first, last = email.split("@")[0].split(".")
        user = state.create_user(
            email,
            first_name=first.title(),
            last_name=last.title(),
            user_type="admin" if email.startswith("morgan.admin") else "learner",
        )
        state.set_history(
            user["id"],
            created_at=_iso(created, now),
            last_sign_in_at=_iso(signed_in, now) if signed_in is not None else None,
            sign_in_count=0 if signed_in is None else 5,
        )
