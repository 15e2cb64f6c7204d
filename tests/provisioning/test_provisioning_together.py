"""Calls that do not depend on each other run together: a first login with three groups on a slow LearnUpon
takes a few round trips, not one per call."""

from __future__ import annotations

import time

from tests.provisioning.test_provisioning_sync import sync_user

GROUPS = ("LU-Engineering", "LU-Sales", "Staff")


def test_group_lookups_and_memberships_run_together(lu_state, make_client, store, settings, make_claims):
    for title in GROUPS:
        lu_state.create_group(title, sso_sync=True)
    lu_state.delay(0.3)  # every API call takes 0.3 s
    client = make_client(timeout=(2.0, 2.0))
    started = time.monotonic()
    outcome = sync_user("acme", make_claims(groups=GROUPS), settings, client, store)
    took = time.monotonic() - started
    assert outcome.status == "synced"
    assert {g["title"] for g in lu_state.groups_of(lu_state.find_user("ada@example.com")["id"])} == set(
        GROUPS
    )
    # search, 3 group look-ups, create the user, 3 memberships: 8 calls, 2.4 s one after another; together
    # (look-ups at once, memberships at once) 4 round trips
    assert outcome.requests == 8 and took < 1.9, took
