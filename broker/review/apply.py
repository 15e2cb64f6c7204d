"""`--apply`: make the changes a review found — disable (or delete) orphans, and inactive accounts when the
portal reclaims them — within `--max-changes`, under a lock in the store so two replicas never run at once,
one audit event per change, and a checkpoint that lets an interrupted run be finished by running again.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broker.clients.learnupon import LearnUponClient, LearnUponError, LearnUponNotFound
from broker.errors import BrokerError
from broker.ops.audit import audit
from broker.review.model import Finding
from broker.review.run import PortalReview
from broker.store import Store, keys

LOCK_TTL = 3600  # a crashed run's lock frees itself; a review of 20,000 users takes minutes, not an hour
CHECKPOINT_TTL = 7 * 86400


class ReviewBusy(BrokerError):
    """Another run (on this or another replica) holds the portal's review lock."""

    check = "review_busy"


class TooManyChanges(BrokerError):
    """The run would change more accounts than allowed; nothing was changed."""

    check = "too_many_changes"


@dataclass
class ApplyResult:
    portal: str
    planned: int
    done: list[Finding] = field(default_factory=list)
    earlier: int = 0  # changes an interrupted earlier run made (from the checkpoint)
    error: str | None = None  # why the run stopped early; the next run continues


@contextmanager
def review_lock(store: Store, portal: str, ttl: int = LOCK_TTL) -> Iterator[str]:
    """Hold the portal's review lock (shared by every replica through the store) for the block."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    key = keys.review_lock(portal)
    if not store.add(key, owner.encode(), ttl):
        holder = (store.get(key) or b"?").decode(errors="replace")
        raise ReviewBusy(f"a review of portal {portal} is already running ({holder}); try again when it ends")
    try:
        yield owner
    finally:
        # release only our own lock: after a TTL expiry another run may hold it now
        if store.get(key) == owner.encode():
            store.delete(key)


def apply_review(
    review: PortalReview,
    learnupon: LearnUponClient,
    store: Store,
    *,
    max_changes: int | None = None,
    actor: str = "cli",
) -> ApplyResult:
    """Make the review's changes, or none when they exceed `max_changes` (default: the portal's percentage).
    Call within `review_lock`. Stops at the first LearnUpon error; running again finishes the job."""
    changes = review.changes
    checkpoint = load_checkpoint(store, review.portal)
    check_limit(review, checkpoint, max_changes, actor)
    earlier = len(checkpoint)
    result = ApplyResult(review.portal, len(changes), earlier=earlier)
    audit("review.apply_started", portal=review.portal, actor=actor, changes=len(changes), earlier=earlier)
    for finding in changes:
        account = finding.account
        try:
            if finding.action == "delete":
                learnupon.delete_user(account.id)
            else:
                learnupon.update_user(account.id, {"enabled": False})
        except LearnUponNotFound:
            pass  # gone meanwhile (deleted by hand, or by the interrupted run): nothing left to do
        except LearnUponError as exc:
            result.error = f"{finding.action} of user {account.id} failed: {exc}"
            audit("review.apply_stopped", portal=review.portal, actor=actor, user_id=account.id,
                  email=account.email, error=str(exc), done=len(result.done))  # fmt: skip
            return result
        checkpoint.append(account.id)
        _save_checkpoint(store, review.portal, checkpoint)
        result.done.append(finding)
        audit(f"review.account_{'deleted' if finding.action == 'delete' else 'disabled'}",
              portal=review.portal, actor=actor, user_id=account.id, email=account.email,
              category=finding.category, reason=finding.reason)  # fmt: skip
    store.delete(keys.review_checkpoint(review.portal))  # finished: the next run starts afresh
    audit(
        "review.apply_finished", portal=review.portal, actor=actor, changed=len(result.done), earlier=earlier
    )
    return result


def check_limit(review: PortalReview, checkpoint: list[int], max_changes: int | None, actor: str) -> int:
    """The limit on changes (`max_changes`, default the portal's percentage); TooManyChanges when the review's
    changes plus those an interrupted earlier run made (`checkpoint`) exceed it."""
    changes, earlier = len(review.changes), len(checkpoint)
    limit = review.default_max_changes if max_changes is None else max_changes
    if changes + earlier > limit:
        resumed = f" plus {earlier} made by an interrupted earlier run" if earlier else ""
        audit("review.apply_refused", portal=review.portal, actor=actor, changes=changes, earlier=earlier,
              max_changes=limit)  # fmt: skip
        raise TooManyChanges(
            f"the review of portal {review.portal} would change {changes} accounts{resumed}, more than "
            f"the limit of {limit} ({review.max_changes_percent:g}% of {len(review.findings)} users unless "
            f"--max-changes says otherwise); nothing was changed. Read the report, then run again with "
            f"--max-changes {changes + earlier} if it is right"
        )
    return limit


def load_checkpoint(store: Store, portal: str) -> list[int]:
    """Accounts an interrupted earlier run changed (they count against the same limit)."""
    raw = store.get(keys.review_checkpoint(portal))
    if raw is None:
        return []
    try:
        data = json.loads(raw)
        return [int(i) for i in data.get("done", [])]
    except (ValueError, TypeError, AttributeError):
        return []


def _save_checkpoint(store: Store, portal: str, done: list[int]) -> None:
    data = {"updated": datetime.now(UTC).isoformat(timespec="seconds"), "done": done}
    store.put(keys.review_checkpoint(portal), json.dumps(data).encode(), CHECKPOINT_TTL)
