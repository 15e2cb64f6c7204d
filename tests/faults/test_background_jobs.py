"""Bulk provisioning and review --apply on the RQ job queue (a real Redis, `broker worker` processes, the fakes
over loopback HTTP): queued by the command, shared by two workers running at once, each job run once, and the
same jobs run again change nothing (idempotent). With the memory store both still run in the command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml
from click.testing import CliRunner

from broker.cli import main
from broker.demo.review_cases import PLANTED
from broker.jobs.queue import QUEUE_NAME, enqueue, job_states, overview
from broker.store.connect import open_store
from tests.demo_servers import running_demo
from tests.harness import base_config
from tests.web.test_admin_security import ADMIN_USER, admin_harness, sign_in_as

pytestmark = pytest.mark.slow

ORPHANS = {email for email, (_, category) in PLANTED.items() if category == "orphan"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def start_worker(config_file: Path, log: Path) -> subprocess.Popen:
    """`broker worker --burst`: takes jobs until the queue is empty, then exits."""
    return subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "worker", "--config", str(config_file), "--burst"],
        env={**os.environ, "BROKER_LOG_FORMAT": "text"}, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def run_workers(config_file: Path, folder: Path, count: int = 2) -> list[str]:
    """`count` workers at once on the same queue; their logs."""
    logs = [folder / f"worker-{n}-{os.urandom(3).hex()}.log" for n in range(count)]
    workers = [start_worker(config_file, log) for log in logs]
    for worker, log in zip(workers, logs, strict=True):
        assert worker.wait(timeout=180) == 0, log.read_text()[-3000:]
    return [log.read_text() for log in logs]


def jobs_run(log: str, prefix: str) -> list[str]:
    """The job ids a worker's log says it finished (RQ logs `queue: Job OK (job id)` per job)."""
    return re.findall(rf"{QUEUE_NAME}: Job OK \(({prefix}[\w-]+)\)", log)


def write_csv(path: Path, count: int) -> Path:
    lines = ["email,first_name,last_name,groups"]
    lines += [f"cohort{n:04d}@example.com,First{n},Last{n},Team {n % 4}" for n in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def provisioning_config(keys, learnupon, redis_url, tmp_path) -> Path:
    lu_url, _state = learnupon
    config = base_config(keys, store__url=redis_url, portals__academy__provisioning={
        "enabled": True, "base_url": lu_url, "username_env": "TEST_LU_USER", "password_env": "TEST_LU_KEY"})  # fmt: skip
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.redis
def test_a_cohort_is_queued_run_by_two_workers_at_once_and_a_second_run_changes_nothing(
    provisioning_config, learnupon, redis_url, tmp_path
):
    _url, state = learnupon
    users = write_csv(tmp_path / "cohort.csv", 160)
    state.delay(0.005)  # a LearnUpon at loopback speed would let the first worker up take every job

    queued = cli(
        "provision", "academy", "--config", provisioning_config, "--csv", users, "--rows-per-job", "10"
    )

    assert queued.exit_code == 0, queued.output
    assert "160 rows from cohort.csv queued as 16 jobs" in queued.output
    assert state.users() == []  # nothing happens until a worker takes the jobs
    store = open_store(redis_url)
    assert overview(store).counts["queued"] == 16

    logs = run_workers(provisioning_config, tmp_path)

    ran = [jobs_run(log, "provision-") for log in logs]
    assert all(ran), [len(r) for r in ran]  # both workers took jobs from the shared queue
    assert sorted(ran[0] + ran[1]) == sorted(set(ran[0] + ran[1])) and len(ran[0] + ran[1]) == 16  # once each
    assert len(state.users()) == 160  # no user twice
    team = state.find_group("Team 3")
    assert team is not None and len(state.members_of(team["id"])) == 40
    done = overview(store)
    assert done.counts["finished"] == 16 and done.counts["failed"] == 0 and done.counts["queued"] == 0

    # the same command again queues the same jobs (same ids); run again, they only read
    state.clear_log()
    again = cli(
        "provision", "academy", "--config", provisioning_config, "--csv", users, "--rows-per-job", "10"
    )
    assert again.exit_code == 0, again.output
    (log,) = run_workers(provisioning_config, tmp_path, count=1)
    assert len(jobs_run(log, "provision-")) == 16  # every job ran again
    assert {method for method, _ in state.calls()} <= {"GET"}  # and wrote nothing (a synced row: no call)
    assert len(state.users()) == 160
    assert overview(store).counts["failed"] == 0


@pytest.mark.redis
def test_a_cohort_job_with_failing_rows_waits_for_a_retry_and_says_why_on_the_admin_page_and_in_metrics(
    keys, provisioning_config, learnupon, redis_url, tmp_path
):
    _url, state = learnupon
    users = write_csv(tmp_path / "cohort.csv", 3)
    state.fail_next(10_000, status=503)

    queued = cli("provision", "academy", "--config", provisioning_config, "--csv", users)
    assert queued.exit_code == 0, queued.output
    run_workers(provisioning_config, tmp_path, count=1)

    store = open_store(redis_url)
    (job,) = overview(store).jobs
    assert job.state == "scheduled" and job.retries_left == 4  # retried later, with backoff
    assert job.reason is not None and "3 of 3 rows failed" in job.reason and "503" in job.reason
    [view] = job_states(store, [job.id])
    assert view.state == "scheduled"

    # what an operator sees: the admin page (state and reason) and the metric
    admin = admin_harness(keys, store=open_store(redis_url))
    assert sign_in_as(admin, ADMIN_USER).status_code == 303  # signed in: on to /admin/
    page = admin.client.get("/admin/jobs/").get_data(as_text=True)
    assert job.id in page and '<td class="state">scheduled</td>' in page and "3 of 3 rows failed" in page
    assert 'broker_jobs{state="scheduled"} 1.0' in admin.client.get("/metrics").get_data(as_text=True)


def test_provision_with_the_memory_store_still_runs_in_the_command(keys, learnupon, tmp_path):
    lu_url, state = learnupon
    config = base_config(keys, portals__academy__provisioning={
        "enabled": True, "base_url": lu_url, "username_env": "TEST_LU_USER", "password_env": "TEST_LU_KEY"})  # fmt: skip
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli("provision", "academy", "--config", path, "--csv", write_csv(tmp_path / "c.csv", 5))
    assert result.exit_code == 0, result.output
    assert "queued" not in result.output and len(state.users()) == 5


@pytest.fixture
def review_demo(tmp_path, redis_url):
    """The demo's fakes (Entra, Okta, LearnUpon with the planted review cases) and its config on Redis."""
    with running_demo(tmp_path) as demo:
        source = Path(demo.apps.config.broker.signing.key).parent / "demo.yaml"
        config = yaml.safe_load(source.read_text())
        config["store"] = {"url": redis_url}
        path = source.with_name("demo-redis.yaml")
        path.write_text(yaml.safe_dump(config))
        yield demo, path


@pytest.mark.redis
def test_review_apply_is_a_job_that_changes_the_confirmed_accounts_once(review_demo, redis_url, tmp_path):
    demo, config = review_demo
    state = demo.apps.learnupon_states["academy"]

    refused = cli("review", "academy", "--config", config, "--apply")  # 4 changes, limit 1: nothing queued
    assert refused.exit_code == 1 and "more than the limit of 1" in refused.output
    store = open_store(redis_url)
    assert overview(store).counts["queued"] == 0

    result = cli("review", "academy", "--config", config, "--apply", "--max-changes", "4", "--format", "json")
    assert result.exit_code == 0, result.output
    assert '"queued": "review-apply-academy-' in result.output
    assert all(state.find_user(email)["enabled"] for email in ORPHANS)  # queued, not made yet
    (queued,) = overview(store).jobs
    assert queued.state == "queued" and "4 changes" in queued.description

    state.clear_log()
    logs = run_workers(config, tmp_path)
    assert sum(len(jobs_run(log, "review-apply-")) for log in logs) == 1
    enabled = {u["email"]: u["enabled"] for u in state.users()}
    assert {email for email, on in enabled.items() if not on} == ORPHANS
    writes = [call for call in state.calls() if call[0] in WRITES]
    assert len(writes) == 4

    # the same job once more (a retry, a second worker, a repeated enqueue): nothing is changed twice
    from rq.job import Job

    job = Job.fetch(queued.id, connection=redis.Redis.from_url(redis_url))
    assert job.get_status() == "finished" and "4 accounts changed" in job.return_value()
    state.clear_log()
    enqueue(store, job.args[0], job.args[1], description="the same review apply, again")
    run_workers(config, tmp_path, count=1)
    assert [call for call in state.calls() if call[0] in WRITES] == []
    assert {u["email"]: u["enabled"] for u in state.users()} == enabled
    assert overview(store).counts == {**overview(store).counts, "finished": 2, "failed": 0}
