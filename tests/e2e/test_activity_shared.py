"""Two broker instances on one Redis keep one activity log: a login finished on one replica and a refusal on
the other are both on /admin/activity, whichever replica the admin reaches (a replica writes its entries in
batches, so the other's appear within broker.store.log_batches.LINGER)."""

from __future__ import annotations

import time

import pytest

from broker.store.connect import open_store
from broker.store.log_batches import LINGER
from tests.harness import Harness
from tests.ops.test_activity import log_in, reference_on, rows, sign_in_admin

pytestmark = pytest.mark.redis


def test_activity_is_shared_by_replicas(keys, redis_url, monkeypatch):
    first = Harness(keys, store=open_store(redis_url, namespace="shared-activity:"))
    second = Harness(keys, store=open_store(redis_url, namespace="shared-activity:"))
    assert log_in(first)[0] == 200
    status, refused = log_in(second, audience="https://someone-else.example")
    assert status == 400
    for replica in (first, second):
        sign_in_admin(replica, monkeypatch)
        deadline = time.monotonic() + 200 * LINGER  # the other replica's batch is on its way
        while len(found := rows(replica.client.get("/admin/activity/").get_data(as_text=True))) < 2:
            assert time.monotonic() < deadline, f"only {len(found)} entries after {200 * LINGER} s"
            time.sleep(LINGER / 5)
        newest, oldest = found
        assert "audience" in newest and reference_on(refused) in newest
        assert "Signed in" in oldest and "alex@contoso.example" in oldest
        assert replica.client.get(f"/admin/activity/{reference_on(refused)}").status_code == 200
