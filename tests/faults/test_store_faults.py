"""The store under real faults: a Redis restarted without persistence, flushed, and a connection reset between
a command and its answer. Nothing consumed before is accepted again; nothing is burned by a retry."""

from __future__ import annotations

import time

import redis

from broker.ops.reload import GENERATION_KEY, Reloader
from broker.store.connect import open_store
from broker.store.redis import RedisStore
from tests.faults.processes import AnswerSwallowingProxy
from tests.harness import Harness

UNSOLICITED = {"upstreams__entra__allow_unsolicited": True}


def idp_initiated(harness: Harness, **changes) -> str:
    return harness.encode(harness.document(harness.spec(None, **changes)))


def test_no_idp_initiated_response_is_accepted_twice_across_a_redis_restart_without_persistence(
    keys, redis_proc
):
    harness = Harness(keys, store=open_store(redis_proc.url), config_overrides=UNSOLICITED)
    consumed = [idp_initiated(harness) for _ in range(30)]
    assert [harness.post(r, "academy").status_code for r in consumed] == [200] * 30
    assert [harness.post(r, "academy").status_code for r in consumed[:3]] == [400] * 3  # replay cache works

    redis_proc.restart()  # no appendonly, no save: every key is gone, the replay cache too
    wait_until_ready(harness)

    replays = [harness.post(r, "academy") for r in consumed]
    assert sum(reply.status_code == 200 for reply in replays) == 0
    assert all(reply.status_code == 400 for reply in replays)
    # SP-initiated logins are unaffected: their pending login is new and is taken once
    pending = harness.login()
    assert harness.post(harness.valid_response(pending), pending.relay_state).status_code == 200


def test_a_flushed_store_gets_a_new_epoch_and_refuses_what_was_issued_before_it(keys, redis_proc):
    harness = Harness(keys, store=open_store(redis_proc.url),
                      config_overrides={**UNSOLICITED, "broker__clock_skew_seconds": 2})  # fmt: skip
    earlier = [idp_initiated(harness) for _ in range(5)]
    assert harness.post(earlier[0], "academy").status_code == 200
    redis.Redis.from_url(redis_proc.url).flushall()
    # never seen by this broker either, but issued before the wipe: its replay entry could have been lost
    assert [harness.post(r, "academy").status_code for r in earlier] == [400] * 5
    # issued after the new epoch (now + the 2 s clock tolerance, seen by a process that knew the old epoch)
    time.sleep(3.1)
    fresh = idp_initiated(harness)
    assert harness.post(fresh, "academy").status_code == 200
    assert harness.post(fresh, "academy").status_code == 400


def test_an_idp_initiated_response_from_before_a_memory_store_restart_is_refused(keys):
    old_broker = Harness(keys, config_overrides=UNSOLICITED)
    response = idp_initiated(old_broker)
    assert old_broker.post(response, "academy").status_code == 200
    time.sleep(1.1)  # epochs are whole seconds
    restarted = Harness(keys, config_overrides=UNSOLICITED)  # a new process: an empty memory store
    assert restarted.post(response, "academy").status_code == 400


def test_consume_retried_after_a_lost_answer_succeeds_instead_of_burning_the_login(keys, redis_proc):
    proxy = AnswerSwallowingProxy(redis_proc.port)
    try:
        harness = Harness(keys, store=open_store(f"redis://127.0.0.1:{proxy.port}/0"))
        warm_up = harness.login()  # loads the consume script, so the swallowed call is the script itself
        assert harness.post(harness.valid_response(warm_up), warm_up.relay_state).status_code == 200
        pending = harness.login()
        proxy.arm(b"assertion:")  # the consume call reaches Redis and runs; its answer is lost
        reply = harness.post(harness.valid_response(pending), pending.relay_state)
        assert proxy.swallowed == 1
        assert reply.status_code == 200, reply.get_data(as_text=True)[:300]
        direct = redis.Redis.from_url(redis_proc.url)
        assert direct.exists(f"broker:login:{pending.relay_state}") == 0  # taken
    finally:
        proxy.close()


def test_consume_is_one_atomic_step_on_the_store(redis_proc):
    store = RedisStore.from_url(redis_proc.url)
    store.put("login:r1", b"pending", 60)
    now = time.time()
    assert store.consume("assertion:a", 60, pending_key="login:r1", issued_at=now) == "ok"
    assert store.consume("assertion:a", 60, pending_key="login:r1", issued_at=now) == "replay"
    assert store.consume("assertion:b", 60, pending_key="login:r1", issued_at=now) == "pending_gone"
    # a refused consume writes nothing: assertion b can still be used with a pending login of its own
    store.put("login:r2", b"pending", 60)
    assert store.consume("assertion:b", 60, pending_key="login:r2", issued_at=now) == "ok"


def test_a_redis_outage_or_wipe_is_not_a_reload_announcement(keys, redis_proc, monkeypatch, tmp_path):
    import yaml

    from tests.harness import base_config

    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(base_config(keys)))
    from broker.app import create_app

    app = create_app(path, store=open_store(redis_proc.url))
    reloader: Reloader = app.extensions["broker_reloader"]
    reasons: list[str] = []
    monkeypatch.setattr(reloader, "reload", lambda reason: reasons.append(reason))
    monkeypatch.setattr("broker.ops.reload.CHECK_EVERY_SECONDS", 0.0)
    app.extensions["broker"].store.put(GENERATION_KEY, b"1", 60)
    reloader.maybe_reload()
    assert reasons == ["announced by another process"]  # a real announcement is seen
    redis_proc.kill()
    reloader.maybe_reload()  # the store cannot answer
    redis_proc.start()  # and comes back empty
    reloader.maybe_reload()
    assert reasons == ["announced by another process"]


def wait_until_ready(harness: Harness, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while harness.client.get("/readyz").json["checks"]["store"] is not True:
        assert time.monotonic() < deadline, "store did not come back"
        time.sleep(0.1)
