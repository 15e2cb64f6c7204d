"""`broker provision`: bulk pre-provisioning from a CSV file or an Entra group, resumable, with a summary."""

from __future__ import annotations

import re

import pytest

import broker.provisioning.bulk as bulk
from tests.cli.conftest import LU_KEY_ENV, SALES_TEAM


def write_csv(path, count: int, *, start: int = 0, extra_rows: str = ""):
    lines = ["email,first_name,last_name,groups,department"]
    lines += [
        f"user{n:04d}@example.com,First{n},Last{n},Team {n % 5},Dept {n % 3}"
        for n in range(start, start + count)
    ]
    path.write_text("\n".join(lines) + "\n" + extra_rows, encoding="utf-8")
    return path


def summary_counts(stdout: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^  (\w+)\s+(\d+)   ", stdout, re.MULTILINE)}


def rows_per_second(stdout: str) -> int:
    return int(re.search(r"\((\d+) rows/s\)", stdout)[1])


@pytest.fixture
def config(write_config, lu_provisioning):
    return write_config(portals__academy__provisioning=lu_provisioning)


@pytest.mark.slow
def test_a_thousand_rows_are_created_then_a_rerun_finds_them_unchanged(run, config, lu, tmp_path):
    users = write_csv(tmp_path / "users.csv", 1000)

    first = run("provision", "academy", "--config", config, "--csv", users)

    assert first.exit_code == 0, first.output
    assert summary_counts(first.stdout) == {"created": 1000, "updated": 0, "unchanged": 0, "failed": 0,
                                            "skipped": 0, "invalid": 0, "total": 1000}  # fmt: skip
    assert len(lu.users()) == 1000
    team = lu.find_group("Team 3")
    assert team["sso_sync"] and len(lu.members_of(team["id"])) == 200
    assert not (tmp_path / "users.csv.progress").exists()  # every row done: the next run is a fresh sync
    print(f"\nbulk create: {rows_per_second(first.stdout)} rows/s")
    lu.clear_log()

    again = run("provision", "academy", "--config", config, "--csv", users)

    assert again.exit_code == 0, again.output
    assert summary_counts(again.stdout)["unchanged"] == 1000
    assert {m for m, _ in lu.calls()} == {"GET"}
    print(f"bulk rerun (unchanged): {rows_per_second(again.stdout)} rows/s")


@pytest.mark.slow
def test_an_interrupted_run_continues_where_it_stopped(run, config, lu, tmp_path, monkeypatch):
    users = write_csv(tmp_path / "users.csv", 400)
    real_sync, synced = bulk.sync_user, []

    def interrupted_after_150(*args, **kwargs):
        if len(synced) == 150:
            raise KeyboardInterrupt  # Ctrl-C in the middle of row 151
        synced.append(args[1].email)
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(bulk, "sync_user", interrupted_after_150)
    stopped = run("provision", "academy", "--config", config, "--csv", users)

    assert stopped.exit_code == 130
    assert stopped.stderr.splitlines()[-1] == (
        f"broker: interrupted after 150 rows (150 done); run the same command again to continue "
        f"(progress in {users}.progress)"
    )
    assert len((tmp_path / "users.csv.progress").read_text().split()) == 150
    monkeypatch.setattr(bulk, "sync_user", real_sync)
    lu.clear_log()

    resumed = run("provision", "academy", "--config", config, "--csv", users)

    assert resumed.exit_code == 0, resumed.output
    counts = summary_counts(resumed.stdout)
    assert (counts["skipped"], counts["created"], counts["failed"]) == (150, 250, 0)
    assert lu.calls().count(("POST", "users")) == 250
    assert len(lu.users()) == 400


def test_failed_rows_exit_1_and_only_they_are_retried(run, config, lu, tmp_path):
    users = write_csv(tmp_path / "users.csv", 6, extra_rows="not-an-email,X,Y,,\n")
    lu.fail_next(2, 422)  # the first two rows' first request is refused

    failed = run("provision", "academy", "--config", config, "--csv", users)

    assert failed.exit_code == 1
    counts = summary_counts(failed.stdout)
    assert (counts["created"], counts["failed"], counts["invalid"], counts["total"]) == (4, 2, 1, 7)
    assert "  line 2: user0000@example.com: LearnUpon GET users/search: HTTP 422" in failed.stdout
    assert "  line 8: no valid email ('not-an-email')" in failed.stdout
    assert (
        failed.stderr.splitlines()[-1]
        == "broker: 2 rows failed; run the same command again to retry only those"
    )
    lu.clear_log()

    retried = run("provision", "academy", "--config", config, "--csv", users)

    assert retried.exit_code == 0, retried.output
    counts = summary_counts(retried.stdout)
    assert (counts["created"], counts["skipped"], counts["invalid"]) == (2, 4, 1)
    assert lu.calls().count(("POST", "users")) == 2


def test_a_dry_run_changes_nothing(run, config, lu, tmp_path):
    users = write_csv(tmp_path / "users.csv", 20)
    lu.create_user("user0003@example.com", first_name="Old", last_name="Last3")

    result = run("provision", "academy", "--config", config, "--csv", users, "--dry-run")

    assert result.exit_code == 0, result.output
    counts = summary_counts(result.stdout)
    assert (counts["created"], counts["updated"]) == (19, 1)
    assert "users would be created" in result.stdout
    assert "Planned (groups as the assertion will carry them):" in result.stdout
    assert "  line 2: user0000@example.com: groups Team 0; enrolments -" in result.stdout
    assert {m for m, _ in lu.calls()} == {"GET"}
    assert not (tmp_path / "users.csv.progress").exists()


def test_usage_and_setup_errors_are_one_line(run, config, write_config, lu, tmp_path, monkeypatch):
    users = write_csv(tmp_path / "users.csv", 1)

    neither = run("provision", "academy", "--config", config)
    assert neither.exit_code == 2
    assert neither.stderr.startswith("broker: give either --csv FILE or --from-group NAME")

    monkeypatch.delenv(LU_KEY_ENV)
    no_key = run("provision", "academy", "--config", config, "--csv", users)
    assert no_key.exit_code == 1
    assert no_key.stderr == f"broker: provisioning: environment variable(s) {LU_KEY_ENV} not set\n"

    no_api = run("provision", "academy", "--config", write_config("plain.yaml"), "--csv", users)
    assert no_api.exit_code == 1
    assert "set username_env and password_env" in no_api.stderr

    no_graph = run("provision", "academy", "--config", config, "--from-group", "Sales Team")
    assert no_graph.exit_code == 1
    assert (
        no_graph.stderr
        == "broker: --from-group needs Microsoft Graph: portal academy's upstream has no groups.graph\n"
    )


def test_from_group_provisions_the_members_of_an_entra_group(run, write_config, lu_provisioning, graph, lu, tmp_path,
                                                              monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # the default progress file is written here
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning)

    result = run("provision", "academy", "--config", config, "--from-group", "Sales Team")

    assert result.exit_code == 0, result.output
    assert f"Entra group Sales Team ({SALES_TEAM}): 2 members with an email" in result.stdout
    assert "left out, no email: guest_fabrikam.example#EXT#@contoso.example" in result.stdout
    assert summary_counts(result.stdout)["created"] == 2
    sales = lu.find_group("Sales Team")
    assert sorted(u["email"] for u in lu.members_of(sales["id"])) == [
        "alex@contoso.example",
        "sam@contoso.example",
    ]


def test_from_group_finds_a_group_by_its_graph_name_and_only_adds(run, write_config, lu_provisioning, graph, lu, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning)
    # Sam is in a managed group the Entra group knows nothing about: --from-group must not remove it
    sam = lu.create_user("sam@contoso.example", first_name="Sam", last_name="Lee")
    lu.add_membership(lu.create_group("Team 9")["id"], sam["id"])

    result = run("provision", "academy", "--config", config, "--from-group", "Engineering", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Entra group Engineering (3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d): 2 members" in result.stdout
    assert lu.find_group("Engineering") is None

    result = run("provision", "academy", "--config", config, "--from-group", "Engineering")
    assert result.exit_code == 0, result.output
    counts = summary_counts(result.stdout)
    assert (counts["created"], counts["updated"]) == (1, 1)
    assert [g["title"] for g in lu.groups_of(sam["id"])] == ["Team 9", "Engineering"]


def test_from_group_with_an_unknown_group_is_one_error_line(run, write_config, lu_provisioning, graph, lu):
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning)

    result = run("provision", "academy", "--config", config, "--from-group", "Nobody's Group")

    assert result.exit_code == 1
    assert result.stderr == 'broker: groups: Graph knows no group named "Nobody\'s Group"\n'


def test_a_rate_limited_row_waits_out_retry_after_instead_of_failing(run, config, lu, tmp_path):
    users = write_csv(tmp_path / "users.csv", 3)
    lu.fail_next(1, 429, retry_after=1)  # longer than a login would wait, well within a bulk row's budget

    result = run("provision", "academy", "--config", config, "--csv", users)

    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout)["created"] == 3
