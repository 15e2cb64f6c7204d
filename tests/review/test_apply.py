"""--apply against the fake LearnUpon API on loopback: the limit, a run stopped by LearnUpon and finished by the
next one (the checkpoint counts its changes), deletes per policy, audit events, the lock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from broker.clients.learnupon import LearnUponClient
from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from broker.review.apply import ReviewBusy, TooManyChanges, apply_review, review_lock
from broker.review.model import Account, Finding
from broker.review.run import PortalReview
from broker.store import keys
from broker.store.memory import MemoryStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def portal(clock) -> Iterator[tuple[LearnUponState, LearnUponClient]]:
    state = LearnUponState("academy", api_username="u", api_password="p", clock=clock)
    with BackgroundServer(create_app(state)) as server:
        client = LearnUponClient(f"{server.url}/api/v1/", "u", "p", slowdown=0, backoff=0.01)
        yield state, client


def review_of(
    state: LearnUponState, orphans: list[str], entitled: int = 100, action: str = "disable"
) -> PortalReview:
    findings = []
    for email in orphans:
        user = state.find_user(email) or state.create_user(email)
        findings.append(Finding(Account(user["id"], email), "orphan", "entra: not in the directory", action))  # type: ignore[arg-type]
    findings += [
        Finding(Account(10_000 + i, f"e{i}@x.example"), "entitled", "active in entra")
        for i in range(entitled)
    ]
    return PortalReview("academy", NOW, findings, {"entra": "read"})


def test_changes_over_the_limit_change_nothing(portal):
    state, client = portal
    review = review_of(state, ["a@x.example", "b@x.example"], entitled=10)  # 12 users: default limit 1
    with pytest.raises(TooManyChanges, match="would change 2 accounts, more than the limit of 1"):
        apply_review(review, client, MemoryStore())
    assert all(u["enabled"] for u in state.users())


def test_each_change_is_an_audit_event(portal, caplog):
    state, client = portal
    review = review_of(state, ["a@x.example", "b@x.example"])
    with caplog.at_level(logging.INFO, logger="broker.ops.audit"):
        result = apply_review(review, client, MemoryStore(), actor="cli")
    events = [r.audit for r in caplog.records if hasattr(r, "audit")]
    disabled = [e for e in events if e["event"] == "review.account_disabled"]
    assert {e["email"] for e in disabled} == {"a@x.example", "b@x.example"}
    assert all(e["category"] == "orphan" and e["reason"] and e["actor"] == "cli" for e in disabled)
    assert [e["event"] for e in events][0] == "review.apply_started" and events[-1][
        "event"
    ] == "review.apply_finished"
    assert len(result.done) == 2 and not any(u["enabled"] for u in state.users())


def test_a_run_stopped_by_learnupon_is_finished_by_the_next_one_within_the_same_limit(portal, clock):
    state, client = portal
    store = MemoryStore()
    emails = ["a@x.example", "b@x.example", "c@x.example", "d@x.example"]
    review = review_of(state, emails)
    state.set_rate_limit(per_minute=2)  # two PUTs pass, the third gets 429 with a minute's Retry-After
    first = apply_review(review, client, store, max_changes=4)
    assert len(first.done) == 2 and first.error and "failed" in first.error
    assert store.get(keys.review_checkpoint("academy")) is not None
    clock.now += 61  # a minute later the portal's allowance is back
    # a fresh review now shows the two accounts left; the two already changed count against the limit
    rest = review_of(state, [e for e in emails if state.find_user(e)["enabled"]])
    with pytest.raises(
        TooManyChanges, match="would change 2 accounts plus 2 made by an interrupted earlier run"
    ):
        apply_review(rest, client, store, max_changes=3)
    second = apply_review(rest, client, store, max_changes=4)
    assert second.earlier == 2 and len(second.done) == 2 and second.error is None
    assert not any(state.find_user(e)["enabled"] for e in emails)
    assert store.get(keys.review_checkpoint("academy")) is None  # finished: the next run starts afresh


def test_delete_policy_deletes_and_a_user_already_gone_is_no_error(portal):
    state, client = portal
    review = review_of(state, ["a@x.example", "b@x.example"], action="delete")
    state.delete_user(state.find_user("b@x.example")["id"])  # deleted by hand meanwhile
    result = apply_review(review, client, MemoryStore(), max_changes=2)
    assert result.error is None and state.find_user("a@x.example") is None


def test_the_lock_keeps_a_second_run_out_until_released():
    store = MemoryStore()
    with review_lock(store, "academy"):
        with pytest.raises(ReviewBusy, match="already running"):
            with review_lock(store, "academy"):
                pass
        with review_lock(store, "sales"):  # other portals are not blocked
            pass
    with review_lock(store, "academy"):
        pass
