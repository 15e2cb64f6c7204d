"""Bulk CSV provisioning: counts, resuming from the progress file, dry run."""

from __future__ import annotations

import pytest

from broker.config import GroupProfile
from broker.provisioning.bulk import provision_csv, read_rows

PROFILE = GroupProfile()  # a portal with no group rules

CSV = """email,first_name,last_name,groups,department
ada@example.com,Ada,Lovelace,LU-Engineering;Staff,R&D
grace@example.com,Grace,Hopper,Staff,
not-an-email,X,Y,,
alan@example.com,Alan,Turing,,Maths
"""


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_rows_become_claims(csv_file):
    rows = list(read_rows(csv_file))
    assert [line for line, _ in rows] == [2, 3, 4, 5]
    ada = rows[0][1]
    assert ada.groups == ("LU-Engineering", "Staff")
    assert ada.extra == {"department": ("R&D",)}
    assert rows[2][1].startswith("no valid email")


def test_a_run_syncs_every_valid_row_and_counts(csv_file, tmp_path, lu_state, client, store, settings):
    summary = provision_csv(
        csv_file, "acme", settings, client, store, group_profile=PROFILE, progress_path=tmp_path / "done.txt"
    )

    assert (summary.total, summary.synced, summary.failed, len(summary.invalid)) == (4, 3, 0, 1)
    assert summary.invalid[0][0] == 4
    assert sorted(u["email"] for u in lu_state.users()) == [
        "ada@example.com",
        "alan@example.com",
        "grace@example.com",
    ]
    assert (tmp_path / "done.txt").read_text().split() == [
        "ada@example.com",
        "grace@example.com",
        "alan@example.com",
    ]


def test_a_rerun_resumes_and_retries_only_failed_rows(
    csv_file, tmp_path, lu_state, make_client, store, settings
):
    progress = tmp_path / "done.txt"
    client = make_client(max_retries=0)
    lu_state.create_user("grace@example.com")
    lu_state.fail_next(1, 503)  # the first row's first request fails, with no retry

    first = provision_csv(
        csv_file, "acme", settings, client, store, group_profile=PROFILE, progress_path=progress
    )
    assert (first.synced, first.failed) == (2, 1)
    assert first.failures[0][:2] == (2, "ada@example.com")
    lu_state.clear_log()

    second = provision_csv(
        csv_file, "acme", settings, client, store, group_profile=PROFILE, progress_path=progress
    )
    assert (second.synced, second.skipped, second.failed) == (1, 2, 0)
    assert lu_state.calls().count(("POST", "users")) == 1  # only ada, the failed row
    assert lu_state.find_user("ada@example.com") is not None


def test_dry_run_reports_plans_without_writing(csv_file, tmp_path, lu_state, client, store, settings):
    seen = []
    summary = provision_csv(
        csv_file,
        "acme",
        settings,
        client,
        store,
        group_profile=PROFILE,
        progress_path=tmp_path / "p.txt",
        dry=True,
        on_row=lambda line, email, result: seen.append((line, email)),
    )
    assert summary.planned == 3
    assert [m for m, _ in lu_state.calls()] == ["GET"] * len(lu_state.calls())
    assert lu_state.users() == []
    assert not (tmp_path / "p.txt").exists()
    assert [line for line, _ in seen] == [2, 3, 4, 5]


def test_rows_get_the_portals_groups_as_a_login_would(csv_file, tmp_path, lu_state, client, store, settings):
    profile = GroupProfile(allow=["LU-*"], strip_prefixes=["LU-"], add=["Learners"])
    summary = provision_csv(csv_file, "acme", settings, client, store, group_profile=profile)
    assert summary.synced == 3
    ada = lu_state.find_user("ada@example.com")
    assert sorted(g["title"] for g in lu_state.groups_of(ada["id"])) == ["Engineering", "Learners"]
    assert lu_state.find_group("Staff") is None  # not allowed: never created
    assert all(g["sso_sync"] for g in lu_state.groups())
