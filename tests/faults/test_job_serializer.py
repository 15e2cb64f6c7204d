"""RQ jobs are stored as JSON, never pickle: a job written to Redis by anyone else cannot run code in
`broker worker` (a real redis-server, real worker processes, the LearnUpon fake over loopback HTTP)."""

from __future__ import annotations

import json
import zlib

import pytest
import redis

from broker.jobs.queue import QUEUE_NAME, enqueue, job_states
from broker.jobs.registry import run_task
from broker.store.connect import open_store
from tests.faults.test_background_jobs import provisioning_config, run_workers  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def _claims(email: str) -> dict:
    return {"email": email, "first_name": "Jo", "last_name": "Json", "groups": [], "groups_complete": True,
            "extra": {}}  # fmt: skip


def test_a_job_is_stored_as_json_and_runs_in_a_worker(provisioning_config, learnupon, redis_url, tmp_path):  # noqa: F811
    _url, state = learnupon
    store = open_store(redis_url)
    job_id = enqueue(store, "converge_account", {"portal": "academy", "claims": _claims("jo@contoso.com")},
                     description="converge jo@contoso.com on academy (test)")  # fmt: skip

    raw = redis.Redis.from_url(redis_url).hget(f"rq:job:{job_id}", "data")
    assert raw is not None
    stored = json.loads(zlib.decompress(raw))  # pickle would not parse as JSON
    assert stored[2][0] == "converge_account" and stored[2][1]["claims"]["email"] == "jo@contoso.com"

    run_workers(provisioning_config, tmp_path, count=1)
    (view,) = job_states(store, [job_id])
    assert view.state == "finished", view.reason
    assert "jo@contoso.com" in {user["email"] for user in state.users()}


def test_a_pickled_job_planted_in_redis_runs_no_code(provisioning_config, redis_url, tmp_path):  # noqa: F811
    from rq import Queue

    marker = tmp_path / "pickle-ran"

    class Planted:
        def __reduce__(self):  # unpickling it opens (creates) the marker file
            return (open, (str(marker), "w"))

    # what someone with write access to Redis could put on the queue: RQ's default (pickle) serializer
    Queue(QUEUE_NAME, connection=redis.Redis.from_url(redis_url)).enqueue_call(
        run_task, args=("converge_account", {"portal": "academy", "claims": Planted()}), job_id="planted"
    )
    run_workers(provisioning_config, tmp_path, count=1)
    assert not marker.exists()


def test_arguments_that_are_not_json_are_refused_when_enqueued(redis_url):
    store = open_store(redis_url)
    with pytest.raises(ValueError, match="plain JSON"):
        enqueue(store, "converge_account", {"portal": "academy", "claims": {1, 2}}, description="a set")
