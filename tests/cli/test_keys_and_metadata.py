"""`broker fingerprint`, `broker metadata` and `broker keygen`."""

from __future__ import annotations

import re
import stat

from lxml import etree

from broker.keys import fingerprint, load_certificate_text, load_key_pair
from broker.saml.metadata import parse_idp_metadata
from broker.saml.xml import MD, qname
from tests.harness import BASE_URL


def test_fingerprint_prints_sha1_and_sha256_of_current_and_next_certificates(run, write_config, keys):
    config = write_config(portals__sales__next_certificate=keys.path("idp-next", "crt"))

    result = run("fingerprint", "sales", "--config", config)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"SHA-1    {keys.portal.sha1_fingerprint}" in out
    assert f"SHA-256  {keys.portal.sha256_fingerprint}" in out
    assert f"SHA-1    {keys.idp_next.sha1_fingerprint}" in out
    assert out.index("current") < out.index(keys.portal.sha1_fingerprint) < out.index("next")
    assert keys.portal.sha1_fingerprint.count(":") == 19 and keys.portal.sha1_fingerprint.isupper()


def test_fingerprint_of_an_unknown_portal_is_one_error_line(run, write_config):
    result = run("fingerprint", "nope", "--config", write_config())

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "broker: unknown portal 'nope' (known: academy, sales)\n"


def test_metadata_for_a_portal_lists_its_current_and_next_certificates(run, write_config, keys):
    config = write_config(portals__sales__next_certificate=keys.path("idp-next", "crt"))

    result = run("metadata", "sales", "--config", config)

    assert result.exit_code == 0, result.output
    idp = parse_idp_metadata(result.stdout_bytes)
    assert idp.entity_id == f"{BASE_URL}/idp"
    assert idp.sso_url == f"{BASE_URL}/login/sales"
    assert [fingerprint(c) for c in idp.certificates] == [
        keys.portal.sha256_fingerprint,
        keys.idp_next.sha256_fingerprint,
    ]


def test_metadata_sp_is_the_brokers_sp_metadata(run, write_config, keys):
    result = run("metadata", "sp", "--config", write_config())

    assert result.exit_code == 0, result.output
    root = etree.fromstring(result.stdout_bytes)
    assert root.get("entityID") == f"{BASE_URL}/saml/metadata"
    acs = root.find(f".//{qname(MD, 'AssertionConsumerService')}")
    assert acs.get("Location") == f"{BASE_URL}/saml/acs"
    cert = root.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate").text
    assert fingerprint(load_certificate_text(cert)) == keys.broker.sha256_fingerprint


def test_metadata_with_a_broken_config_prints_the_config_error_as_is(run, tmp_path):
    path = tmp_path / "broker.yaml"
    path.write_text("broker: [\n", encoding="utf-8")

    result = run("metadata", "sp", "--config", path)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"broker: {path}: line ")
    assert "not valid YAML" in result.stderr
    assert result.stderr.count("\n") == 1


def test_keygen_writes_a_private_key_and_certificate_and_prints_the_snippet(run, tmp_path):
    out = tmp_path / "certs"

    result = run("keygen", "--portal", "academy", "--out", out, "--years", "2", "--bits", "3072")

    assert result.exit_code == 0, result.output
    key, cert = out / "academy.key", out / "academy.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pair = load_key_pair(key, cert)
    assert pair.private_key.key_size == 3072
    assert f"SHA-1    {pair.sha1_fingerprint}" in result.stdout
    assert f"SHA-256  {pair.sha256_fingerprint}" in result.stdout
    assert f"portals:\n  academy:\n    signing:\n      key: {key}\n      cert: {cert}" in result.stdout
    days = (pair.certificate.not_valid_after_utc - pair.certificate.not_valid_before_utc).days
    assert days == 730


def test_keygen_refuses_to_overwrite_without_force(run, tmp_path):
    assert run("keygen", "--portal", "academy", "--out", tmp_path).exit_code == 0
    before = (tmp_path / "academy.key").read_bytes()

    refused = run("keygen", "--portal", "academy", "--out", tmp_path)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("broker: ") and "--force" in refused.stderr
    assert (tmp_path / "academy.key").read_bytes() == before

    forced = run("keygen", "--portal", "academy", "--out", tmp_path, "--force")
    assert forced.exit_code == 0
    assert (tmp_path / "academy.key").read_bytes() != before


def test_keygen_force_writes_a_new_0600_file_and_never_follows_a_symlink(run, tmp_path):
    import os
    import stat

    out = tmp_path / "certs"
    assert run("keygen", "--portal", "academy", "--out", out).exit_code == 0
    key = out / "academy.key"
    key.chmod(0o644)  # an operator loosened it; the new key must never live in this file with this mode
    old_copy = tmp_path / "old.key"
    os.link(key, old_copy)  # the old inode: rewriting in place would change what it holds
    old = old_copy.read_bytes()
    assert run("keygen", "--portal", "academy", "--out", out, "--force").exit_code == 0
    assert old_copy.read_bytes() == old
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes() != old

    victim = tmp_path / "victim.txt"  # someone plants a symlink where the key goes
    victim.write_text("not yours")
    key.unlink()
    key.symlink_to(victim)
    assert run("keygen", "--portal", "academy", "--out", out, "--force").exit_code == 0
    assert victim.read_text() == "not yours"
    assert not key.is_symlink() and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in out.iterdir()) == ["academy.crt", "academy.key"]  # no temporary left


def test_keygen_without_portal_makes_the_brokers_key(run, tmp_path):
    result = run("keygen", "--out", tmp_path)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "broker.key").exists()
    assert "broker:\n  signing:\n" in result.stdout


def test_a_usage_error_is_one_line(run):
    result = run("keygen", "--bits", "1024")

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("broker: Invalid value for '--bits'")
    assert "keygen --help" in result.stderr


def test_every_command_has_help_with_an_example(run):
    for command in ("check", "fingerprint", "metadata", "keygen", "simulate", "provision", "serve", "demo"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert re.search(rf"Example:\n\s+broker {command} ", result.stdout), command
