"""Half-made accounts converge through background jobs: LearnUpon too slow for the login's budget under
`block` (logins refused) and `continue` (logins go on), then `broker worker` processes (RQ on a real Redis)
finish every account; with the memory store, the same job runs in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from broker.demo.idp_response import DemoUser
from broker.demo.learnupon_api import create_app
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from broker.jobs.queue import overview
from broker.store.connect import open_store
from tests.harness import ALEX, Harness, base_config

pytestmark = pytest.mark.slow

GROUPS = ["LU-Sales", "LU-Staff", "LU-Onboarding"]
LU_ENV = {"JOBS_LU_USER": "api-user", "JOBS_LU_KEY": "api-key"}


@pytest.fixture
def learnupon(monkeypatch):
    for name, value in LU_ENV.items():
        monkeypatch.setenv(name, value)
    state = LearnUponState("academy", api_username="api-user", api_password="api-key")
    with BackgroundServer(create_app(state)) as server:
        yield server.url + "/api/v1/", state


def overrides(lu_url: str, on_failure: str, store_url: str = "memory://") -> dict:
    return {
        "store__url": store_url,
        "upstreams__entra__claims": {"groups": ["http://schemas.contoso.example/claims/lu-groups"]},
        "portals__academy__provisioning": {
            "enabled": True, "base_url": lu_url, "username_env": "JOBS_LU_USER", "password_env": "JOBS_LU_KEY",
            "on_failure": on_failure, "budget_seconds": 1.0, "managed_group_patterns": ["LU-*"],
        },
    }  # fmt: skip


def user(n: int) -> DemoUser:
    return DemoUser(f"cohort{n}@contoso.example", "Cohort", f"Member {n}", ALEX.object_id, [])


def login(harness: Harness, who: DemoUser):
    pending = harness.login()
    attributes = {**who.entra_attributes("11111111-2222-4333-8444-555555555555"),
                  "http://schemas.contoso.example/claims/lu-groups": GROUPS}  # fmt: skip
    return harness.post(harness.valid_response(pending, user=who, attributes=attributes), pending.relay_state)


def converged(state: LearnUponState, who: DemoUser) -> bool:
    found = state.find_user(who.email)
    return found is not None and {g["title"] for g in state.groups_of(found["id"])} == set(GROUPS)


def run_worker(config_file, *, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", "worker", "--config", str(config_file), "--burst"],
        env={**os.environ, **env, "BROKER_LOG_FORMAT": "text"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.redis
def test_half_made_accounts_of_refused_logins_are_finished_by_rq_workers(
    keys, learnupon, redis_url, tmp_path
):
    lu_url, state = learnupon
    settings = overrides(lu_url, "block", redis_url)
    config_file = tmp_path / "broker.yaml"
    config_file.write_text(yaml.safe_dump(base_config(keys, **settings)))
    harness = Harness(keys, store=open_store(redis_url), config_overrides=settings)
    state.delay(0.4)  # ~7 calls for a new user with 3 groups: over the 1 s budget
    cohort = [user(n) for n in range(4)]
    assert [login(harness, who).status_code for who in cohort] == [503] * 4  # refused under block
    assert not any(converged(state, who) for who in cohort)
    queued = overview(harness.runtime.store)
    assert queued.backend == "rq" and queued.counts["queued"] == 4
    assert all("login refused" in job.description for job in queued.jobs)

    state.clear_faults()  # LearnUpon is back; two workers share the queue
    workers = [run_worker(config_file, env=LU_ENV) for _ in range(2)]
    assert all(w.returncode == 0 for w in workers), workers[0].stderr[-2000:]
    assert all(converged(state, who) for who in cohort)
    done = overview(harness.runtime.store)
    assert done.counts["queued"] == 0 and done.counts["finished"] == 4 and done.counts["failed"] == 0


@pytest.mark.redis
def test_a_failing_job_is_retried_later_and_shows_why(keys, learnupon, redis_url, tmp_path, monkeypatch):
    lu_url, state = learnupon
    settings = overrides(lu_url, "continue", redis_url)
    config_file = tmp_path / "broker.yaml"
    config_file.write_text(yaml.safe_dump(base_config(keys, **settings)))
    harness = Harness(keys, store=open_store(redis_url), config_overrides=settings)
    state.fail_next(1000, status=503)
    assert login(harness, user(9)).status_code == 200  # `continue`: the login goes on
    worker = run_worker(config_file, env=LU_ENV)
    assert worker.returncode == 0, worker.stderr[-2000:]
    waiting = overview(harness.runtime.store)
    assert waiting.counts["scheduled"] == 1  # retried later, with backoff
    (job,) = [j for j in waiting.jobs if j.state == "scheduled"]
    assert "503" in (job.reason or "") and job.retries_left == 4


def test_with_the_memory_store_the_job_runs_in_process(keys, learnupon):
    lu_url, state = learnupon
    harness = Harness(keys, config_overrides=overrides(lu_url, "continue"))
    state.delay(0.4)
    who = user(20)
    assert login(harness, who).status_code == 200
    assert not converged(state, who)
    state.clear_faults()
    deadline = time.monotonic() + 20  # the first try waits 2 s; jobs other tests left may be running
    while not converged(state, who):
        assert time.monotonic() < deadline, overview(harness.runtime.store)
        time.sleep(0.1)
