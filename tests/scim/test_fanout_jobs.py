"""SCIM changes that reach several portals or many members run on the job queue (RQ on a real Redis, taken by
real `broker worker` processes): the request answers once the change is stored and its first portal pushed;
jobs, one per user and portal, converge the rest, idempotently, retried with backoff, visible on /admin/jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import yaml

from broker.jobs.queue import overview
from broker.store.connect import open_store
from tests.scim.conftest import Scim, scim_config

pytestmark = pytest.mark.redis
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales Team"}


def user(n: int) -> dict:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"member{n}@contoso.example",
        "name": {"givenName": "Member", "familyName": str(n)},
        "active": True,
    }


@pytest.fixture
def setup(keys, make_scim, redis_url, tmp_path, _fake_portals):
    """A broker on a real Redis (so SCIM fans out to RQ) and a config file for `broker worker`."""
    config_file = tmp_path / "broker.yaml"
    config_file.write_text(yaml.safe_dump(scim_config(keys, _fake_portals[1].url, store__url=redis_url)))
    scim = make_scim(store=open_store(redis_url), store__url=redis_url)
    return scim, config_file


def run_worker(config_file) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "broker.cli", "worker", "--config", str(config_file), "--burst"],
        env={**os.environ, "BROKER_LOG_FORMAT": "text"}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def add_members(scim: Scim, group_id: str, user_ids: list[str]):
    return scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": u} for u in user_ids]}]})  # fmt: skip


def titles(scim: Scim, portal: str, email: str) -> list[str] | None:
    found = scim.user(portal, email)
    return None if found is None else [g["title"] for g in scim.portals[portal].groups_of(found["id"])]


def test_a_user_routed_to_two_portals_gets_the_first_now_and_the_other_by_a_job(setup):
    scim, config_file = setup
    user_id = scim.call("POST", "/Users", user(1)).json["id"]
    group_id = scim.call("POST", "/Groups", GROUP).json["id"]
    scim.clear_logs()
    # "Sales Team" matches the Sales* rule: academy and sales, in that order
    assert add_members(scim, group_id, [user_id]).status_code == 204
    assert titles(scim, "academy", "member1@contoso.example") == ["Sales Team"]  # pushed within the request
    assert scim.user("sales", "member1@contoso.example") is None and not scim.portals["sales"].request_log()
    jobs = overview(scim.app.extensions["broker"].store)
    assert jobs.backend == "rq" and jobs.counts["queued"] == 1
    assert "portal sales" in jobs.jobs[0].description and jobs.jobs[0].state == "queued"

    run_worker(config_file)
    assert titles(scim, "sales", "member1@contoso.example") == ["Sales Team"]
    assert overview(scim.app.extensions["broker"].store).counts["queued"] == 0
    scim.clear_logs()  # the job done, the same change again finds nothing to do anywhere
    assert add_members(scim, group_id, [user_id]).status_code == 204
    assert scim.lu_calls() == 0 and overview(scim.app.extensions["broker"].store).counts["queued"] == 0


def test_a_group_change_touching_many_members_answers_at_once_and_jobs_converge_every_portal(setup):
    scim, config_file = setup
    ids = [scim.call("POST", "/Users", user(n)).json["id"] for n in range(4)]
    group_id = scim.call("POST", "/Groups", GROUP).json["id"]
    scim.clear_logs()
    answered = add_members(scim, group_id, ids)
    assert answered.status_code == 204 and scim.lu_calls() == 0  # stored, nothing pushed in the request
    assert {m["value"] for m in scim.call("GET", f"/Groups/{group_id}").json["members"]} == set(ids)
    assert overview(scim.app.extensions["broker"].store).counts["queued"] == 8  # 4 users × (academy, sales)

    run_worker(config_file)
    for n in range(4):
        email = f"member{n}@contoso.example"
        assert titles(scim, "academy", email) == titles(scim, "sales", email) == ["Sales Team"]
    for portal in ("academy", "sales"):
        emails = [u["email"] for u in scim.portals[portal].users()]
        assert len(emails) == len(set(emails)) == 4  # no duplicate
        assert sum(
            1 for r in scim.portals[portal].request_log() if r.method == "POST" and r.path == "users"
        ) == (4 if portal == "sales" else 0)

    scim.clear_logs()  # removing them all: the jobs take them out of the group and disable them in sales
    removed = scim.call("PATCH", f"/Groups/{group_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "Remove", "path": "members", "value": [{"value": u} for u in ids]}]})  # fmt: skip
    assert removed.status_code == 204 and scim.lu_calls() == 0
    run_worker(config_file)
    for n in range(4):
        email = f"member{n}@contoso.example"
        assert titles(scim, "academy", email) == [] and scim.user("academy", email)["enabled"] is True
        assert scim.user("sales", email)["enabled"] is False


def test_a_job_queued_twice_runs_once_and_pushes_the_latest_state(setup):
    scim, config_file = setup
    user_id = scim.call("POST", "/Users", user(7)).json["id"]
    group_id = scim.call("POST", "/Groups", GROUP).json["id"]
    add_members(scim, group_id, [user_id])
    # a second change before any worker ran: the waiting sales job is not queued again
    scim.call("PATCH", f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [
        {"op": "replace", "path": "name.givenName", "value": "Renamed"}]})  # fmt: skip
    assert overview(scim.app.extensions["broker"].store).counts["queued"] == 1
    assert scim.user("academy", "member7@contoso.example")["first_name"] == "Renamed"
    run_worker(config_file)
    sales = scim.user("sales", "member7@contoso.example")
    assert sales["first_name"] == "Renamed"  # created once, with the latest name
    assert [r.method for r in scim.portals["sales"].request_log() if r.path == "users"] == ["POST"]


def test_a_deleted_user_is_removed_from_the_other_portals_by_jobs(setup):
    scim, config_file = setup
    user_id = scim.call("POST", "/Users", user(8)).json["id"]
    group_id = scim.call("POST", "/Groups", GROUP).json["id"]
    add_members(scim, group_id, [user_id])
    run_worker(config_file)
    assert scim.call("DELETE", f"/Users/{user_id}").status_code == 204
    assert scim.user("academy", "member8@contoso.example")["enabled"] is False  # first portal: now
    assert scim.user("sales", "member8@contoso.example")["enabled"] is True
    run_worker(config_file)
    assert scim.user("sales", "member8@contoso.example")["enabled"] is False
    assert scim.call("GET", f"/Users/{user_id}").status_code == 404


@pytest.mark.slow
def test_a_failing_job_is_retried_with_backoff_and_shows_its_reason(setup):
    scim, config_file = setup
    user_id = scim.call("POST", "/Users", user(9)).json["id"]
    group_id = scim.call("POST", "/Groups", GROUP).json["id"]
    add_members(scim, group_id, [user_id])
    scim.portals["sales"].fail_next(20, 503)
    run_worker(config_file)
    jobs = overview(scim.app.extensions["broker"].store)
    waiting = [j for j in jobs.jobs if j.state == "scheduled"]
    assert len(waiting) == 1 and "503" in (waiting[0].reason or "") and waiting[0].retries_left == 4
    assert scim.user("sales", "member9@contoso.example") is None
    scim.portals["sales"].clear_faults()
    time.sleep(11)  # RQ's first retry interval is 10 s
    run_worker(config_file)
    assert titles(scim, "sales", "member9@contoso.example") == ["Sales Team"]
    assert overview(scim.app.extensions["broker"].store).counts["scheduled"] == 0


@pytest.mark.slow
def test_a_job_waits_out_learnupons_retry_after(setup):
    scim, config_file = setup
    user_id = scim.call("POST", "/Users", user(10)).json["id"]
    group_id = scim.call("POST", "/Groups", GROUP).json["id"]
    add_members(scim, group_id, [user_id])
    scim.portals["sales"].fail_next(1, 429, retry_after=11)  # longer than the client's own 10 s wait
    started = time.monotonic()
    run_worker(config_file)
    assert time.monotonic() - started >= 11
    log = scim.portals["sales"].request_log()
    assert [r.status for r in log][:2] == [429, 201] and sum(1 for r in log if r.status == 429) == 1
    assert titles(scim, "sales", "member10@contoso.example") == ["Sales Team"]
    assert overview(scim.app.extensions["broker"].store).counts["failed"] == 0
