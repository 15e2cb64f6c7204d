"""Which LearnUpon pushes of a SCIM change the request makes itself, and which become background jobs.

Without a job queue (memory store, Redis Cluster) a request pushes everything itself, as it always did. With
one (RQ on the store's Redis), a user change pushes its first `inline_portals` portals (routing order) within
the request, so a LearnUpon refusal or throttling reaches the IdP, which retries; its other portals, and every
member of a group change touching more than `inline_members` users, are one job per user and portal. Jobs are
queued only once the request's state is stored, and read that state when they run (broker/jobs/scim_push.py).
"""

from __future__ import annotations

from collections.abc import Callable


class Fanout:
    """The split for one SCIM request; `defer` collects jobs, `flush` queues them after the state is saved."""

    def __init__(
        self,
        enqueue: Callable[[str, str], None] | None,
        inline_portals: int = 1,
        inline_members: int = 1,
    ):
        self.enqueue = enqueue
        self.inline_portals = inline_portals
        self.inline_members = inline_members
        self._later: list[tuple[str, str]] = []

    @classmethod
    def inline(cls) -> Fanout:
        """Everything within the request (no job queue, or the job itself)."""
        return cls(None)

    def split(self, portals: list[str], users: int = 1) -> tuple[list[str], list[str]]:
        """(pushed now, left to jobs) for one user's `portals` in a change touching `users` users."""
        if self.enqueue is None:
            return portals, []
        now = self.inline_portals if users <= self.inline_members else 0
        return portals[:now], portals[now:]

    def defer(self, user_id: str, portals: list[str]) -> None:
        self._later.extend((user_id, portal) for portal in portals)

    def flush(self) -> list[tuple[str, str]]:
        """Queue the collected jobs (each user and portal once); returns them."""
        queued = list(dict.fromkeys(self._later))
        self._later.clear()
        if self.enqueue is not None:
            for user_id, portal in queued:
                self.enqueue(user_id, portal)
        return queued

    def discard(self) -> None:
        """The request failed: its state was not kept, so nothing is queued (the IdP retries)."""
        self._later.clear()
