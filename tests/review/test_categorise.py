"""The review's categories and reasons, decided without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker.clients.directory import DirectorySnapshot, DirectoryUser
from broker.config.review import ReviewSettings
from broker.review.categorise import PortalPolicy, categorise
from broker.review.model import Account

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def account(email: str, *, days_since_sign_in: int | None = 3, created_days_ago: int = 400, **kw) -> Account:
    signed_in = NOW - timedelta(days=days_since_sign_in) if days_since_sign_in is not None else None
    return Account(
        id=abs(hash(email)) % 10_000,
        email=email,
        created_at=NOW - timedelta(days=created_days_ago),
        last_sign_in_at=signed_in,
        sign_in_count=0 if signed_in is None else 4,
        **kw,
    )


def directory(*users: DirectoryUser, members: set[str] | None = None) -> DirectorySnapshot:
    return DirectorySnapshot(
        kind="entra", users=list(users), members=members or set(), routing_groups={"g": "Sales"}
    )


def user(uid: str, email: str, state: str = "active", detail: str = "accountEnabled true") -> DirectoryUser:
    return DirectoryUser(id=uid, emails=frozenset({email}), state=state, detail=detail)  # type: ignore[arg-type]


def policy(groups: tuple[str, ...] = (), **settings) -> PortalPolicy:
    return PortalPolicy(required_groups=groups, settings=ReviewSettings(**settings))


def one(acc: Account, directories, pol: PortalPolicy | None = None):
    [finding] = categorise([acc], directories, pol or policy(), NOW)
    return finding


def test_active_directory_user_who_signed_in_recently_is_entitled():
    finding = one(account("Ann@Example.com"), {"entra": directory(user("1", "ann@example.com"))})
    assert (finding.category, finding.action) == ("entitled", None)
    assert finding.reason == "active in entra"


def test_account_missing_from_every_directory_is_an_orphan_to_disable():
    finding = one(account("gone@example.com"), {"entra": directory(), "okta": directory()})
    assert finding.category == "orphan"
    assert finding.action == "disable"
    assert finding.reason == "entra: not in the directory; okta: not in the directory"


def test_disabled_user_is_an_orphan_with_the_directory_words():
    finding = one(
        account("d@example.com"),
        {"entra": directory(user("1", "d@example.com", "disabled", "accountEnabled false"))},
    )
    assert finding.category == "orphan"
    assert "disabled (accountEnabled false)" in finding.reason


def test_active_in_one_directory_is_enough_when_another_does_not_know_the_user():
    finding = one(
        account("p@example.com"), {"entra": directory(), "okta": directory(user("o1", "p@example.com"))}
    )
    assert finding.category == "entitled"
    assert finding.reason == "active in okta"


def test_user_out_of_every_routing_group_is_an_orphan_naming_the_groups():
    snap = directory(user("1", "s@example.com"), members={"someone-else"})
    finding = one(account("s@example.com"), {"entra": snap}, policy(("Sales*",)))
    assert finding.category == "orphan"
    assert "in none of the groups that route here (Sales*)" in finding.reason
    member = one(
        account("s@example.com"),
        {"entra": directory(user("1", "s@example.com"), members={"1"})},
        policy(("Sales*",)),
    )
    assert member.category == "entitled"


def test_unreachable_directory_makes_unknown_and_never_an_action():
    finding = one(
        account("x@example.com"), {"entra": directory(), "okta": "HTTP 503; gave up after 4 attempts"}
    )
    assert finding.category == "unknown"
    assert finding.action is None
    assert "okta: unreachable: HTTP 503" in finding.reason


def test_unreachable_directory_does_not_hide_an_entitlement_found_elsewhere():
    finding = one(
        account("x@example.com"), {"entra": directory(user("1", "x@example.com")), "okta": "timeout"}
    )
    assert finding.category == "entitled"


def test_no_directory_configured_is_unknown():
    assert one(account("x@example.com"), {}).category == "unknown"


def test_admin_is_listed_apart_and_never_changed_even_when_orphaned():
    finding = one(account("boss@example.com", user_type="admin"), {"entra": directory()})
    assert (finding.category, finding.action) == ("admin", None)
    assert "never changed" in finding.reason and "entra: not in the directory" in finding.reason


def test_never_signed_in_after_the_grace_period_and_not_before():
    snap = {"entra": directory(user("1", "n@example.com"))}
    old = one(account("n@example.com", days_since_sign_in=None, created_days_ago=60), snap)
    assert old.category == "never_signed_in"
    assert "never signed in to LearnUpon" in old.reason and "60 days ago" in old.reason
    assert old.action is None  # reclaim_after_days unset: reported, not changed
    new = one(account("n@example.com", days_since_sign_in=None, created_days_ago=3), snap)
    assert new.category == "entitled"


def test_inactive_after_the_configured_days_and_reclaimed_only_when_asked():
    snap = {"entra": directory(user("1", "i@example.com"))}
    idle = account("i@example.com", days_since_sign_in=200)
    reported = one(idle, snap, policy(inactive_after_days=90))
    assert reported.category == "inactive"
    assert "inactive for 200 days" in reported.reason and reported.action is None
    reclaimed = one(idle, snap, policy(inactive_after_days=90, reclaim_after_days=180))
    assert reclaimed.action == "disable"
    assert one(idle, snap, policy(inactive_after_days=365)).category == "entitled"


def test_orphan_already_disabled_needs_no_change_unless_policy_deletes():
    disabled = account("gone@example.com", enabled=False)
    kept = one(disabled, {"entra": directory()})
    assert (kept.category, kept.action) == ("orphan", None)
    assert "already disabled" in kept.reason
    assert one(disabled, {"entra": directory()}, policy(orphan_action="delete")).action == "delete"


def test_an_active_account_wins_over_a_deleted_one_with_the_same_email():
    snap = directory(user("old", "r@example.com", "deleted", "deleted"), user("new", "r@example.com"))
    assert one(account("r@example.com"), {"entra": snap}).category == "entitled"
