"""The Google Workspace directory client against the fake Admin SDK on loopback: the signed service-account
assertion, paging, suspended / archived / deleted users, routing groups, throttling and refused delegation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.clients.directory import DirectoryUnavailable
from broker.clients.google_directory import GoogleDirectory
from broker.clients.http import RetryPolicy
from broker.demo.fake_google import FakeGoogleControl, create_fake_google, google_user
from broker.demo.webserver import BackgroundServer, LateApp

ADMIN = "admin@contoso.example"
SA_EMAIL = "broker-review@contoso-project.iam.gserviceaccount.com"
USERS = [google_user(f"1{n:05d}", f"g{n}@contoso.example", "G", str(n), last_login="2026-11-28T08:00:00.000Z")
         for n in range(1100)]  # fmt: skip
USERS += [google_user("200001", "susp@contoso.example", "S", "S", suspended=True),
          google_user("200002", "arch@contoso.example", "A", "A", archived=True, aliases=["old-arch@contoso.example"]),
          google_user("200003", "new@contoso.example", "N", "N")]  # fmt: skip
DELETED = [google_user("300001", "gone@contoso.example", "D", "D")]
GROUPS = {"03sales": ("Sales Team", "sales@contoso.example", ["100001", "100002"]),
          "03all": ("Everyone", "all@contoso.example", ["100003"])}  # fmt: skip


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def google(tmp_path_factory) -> Iterator[tuple[Path, str, FakeGoogleControl]]:
    key = _key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    late = LateApp()
    control = FakeGoogleControl()
    with BackgroundServer(late) as server:
        late.app = create_fake_google(client_email=SA_EMAIL, public_key_pem=public, admin_email=ADMIN,
                                      token_url=f"{server.url}/token", users=USERS, groups=GROUPS,
                                      deleted_users=DELETED, control=control)  # fmt: skip
        key_file = tmp_path_factory.mktemp("google") / "sa.json"
        key_file.write_text(json.dumps({"type": "service_account", "project_id": "contoso-project",
                                        "private_key_id": "abc123", "private_key": pem, "client_email": SA_EMAIL,
                                        "client_id": "1234567890", "token_uri": f"{server.url}/token"}))  # fmt: skip
        yield key_file, server.url, control


@pytest.fixture
def directory(google) -> Iterator[tuple[GoogleDirectory, FakeGoogleControl]]:
    key_file, url, control = google
    control.reset()
    yield GoogleDirectory.from_key_file(key_file, admin_email=ADMIN, api_base=url, budget=10,
                                        retry=RetryPolicy(3, 0.01, 3)), control  # fmt: skip
    control.reset()


def test_reads_users_with_their_states_and_routing_group_members(directory):
    client, control = directory
    snap = client.snapshot(["sales*"])
    by_email = snap.by_email()
    assert by_email["g7@contoso.example"].state == "active"
    assert by_email["g7@contoso.example"].last_sign_in is not None
    assert by_email["new@contoso.example"].last_sign_in is None  # the epoch means never
    assert by_email["susp@contoso.example"].state == "suspended"
    assert by_email["old-arch@contoso.example"].state == "archived"  # aliases count
    assert by_email["gone@contoso.example"].state == "deleted"
    assert snap.routing_groups == {"03sales": "Sales Team"}
    assert snap.members == {"100001", "100002"}
    # 1103 users at 500 a page: 3 pages, 1 deleted page, 1 groups page, 1 members page, 1 token
    assert (
        control.counts["users"] == 4 and control.counts["token"] == 1 and snap.requests == control.total == 7
    )


def test_group_email_matches_too(directory):
    client, _ = directory
    assert client.snapshot(["all@contoso.example"]).routing_groups == {"03all": "Everyone"}


def test_throttled_listing_is_retried(directory):
    client, control = directory
    control.fail_next(2, 429, endpoint="users")
    assert len(client.snapshot([]).users) == 1104


def test_revoked_delegation_is_directory_unavailable_naming_the_scopes(directory):
    client, control = directory
    control.delegation_revoked = True
    with pytest.raises(DirectoryUnavailable, match="unauthorized_client.*acting as admin@contoso.example"):
        client.snapshot([])


def test_an_assertion_signed_with_another_key_is_refused(google):
    key_file, url, control = google
    data = json.loads(key_file.read_text())
    data["private_key"] = _key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()  # fmt: skip
    forged = key_file.with_name("forged.json")
    forged.write_text(json.dumps(data))
    client = GoogleDirectory.from_key_file(forged, admin_email=ADMIN, api_base=url, budget=5)
    with pytest.raises(DirectoryUnavailable, match="invalid_grant"):
        client.snapshot([])


def test_5xx_until_the_retries_run_out_is_directory_unavailable(directory):
    client, control = directory
    control.fail_next(20, 503, endpoint="users")
    with pytest.raises(DirectoryUnavailable, match="HTTP 503 backendError; gave up"):
        client.snapshot([])


def test_a_key_file_that_is_not_a_service_account_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"type": "authorized_user"}))
    with pytest.raises(ValueError, match="not a service account key file"):
        GoogleDirectory.from_key_file(path, admin_email=ADMIN)
