"""RQ jobs are stored as JSON, never pickle: a job written to Redis by anyone else cannot run code in
`broker worker` (a real redis-server, real worker processes, the LearnUpon fake over loopback HTTP)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import redis
import yaml

from broker.jobs.queue import QUEUE_NAME, enqueue, job_states
from broker.jobs.registry import run_task
from broker.store.connect import open_store
from tests.faults.test_background_jobs import run_workers
from tests.harness import base_config

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture
def worker_config(keys, learnupon, redis_url, tmp_path) -> Path:
    lu_url, _state = learnupon
    config = base_config(keys, store__url=redis_url, portals__academy__provisioning={
        "enabled": True, "base_url": lu_url, "username_env": "TEST_LU_USER", "password_env": "TEST_LU_KEY"})  # fmt: skip
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _claims(email: str) -> dict:
    return {"email": email, "first_name": "Jo", "last_name": "Json", "groups": [], "groups_complete": True,
            "extra": {}}  # fmt: skip


def test_a_job_is_stored_as_json_and_runs_in_a_worker(worker_config, learnupon, redis_url, tmp_path):
    _url, state = learnupon
    store = open_store(redis_url)
    job_id = enqueue(store, "converge_account", {"portal": "academy", "claims": _claims("jo@contoso.com")},
                     description="converge jo@contoso.com on academy (test)")  # fmt: skip

    raw = redis.Redis.from_url(redis_url).hget(f"rq:job:{job_id}", "data")
    assert raw is not None
    stored = json.loads(zlib.decompress(raw))  # pickle would not parse as JSON
    assert stored[2][0] == "converge_account" and stored[2][1]["claims"]["email"] == "jo@contoso.com"

    run_workers(worker_config, tmp_path, count=1)
    (view,) = job_states(store, [job_id])
    assert view.state == "finished", view.reason
    assert "jo@contoso.com" in {user["email"] for user in state.users()}


def test_a_pickled_job_planted_in_redis_runs_no_code(worker_config, redis_url, tmp_path):
    from rq import Queue

    marker = tmp_path / "pickle-ran"

    class Planted:
        def __reduce__(self):  # unpickling it opens (creates) the marker file
            return (open, (str(marker), "w"))

    # what someone with write access to Redis could put on the queue: RQ's default (pickle) serializer
    Queue(QUEUE_NAME, connection=redis.Redis.from_url(redis_url)).enqueue_call(
        run_task, args=("converge_account", {"portal": "academy", "claims": Planted()}), job_id="planted"
    )
    run_workers(worker_config, tmp_path, count=1)
    assert not marker.exists()


def test_arguments_that_are_not_json_are_refused_when_enqueued(redis_url):
    store = open_store(redis_url)
    with pytest.raises(ValueError, match="plain JSON"):
        enqueue(store, "converge_account", {"portal": "academy", "claims": {1, 2}}, description="a set")
