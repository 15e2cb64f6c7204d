"""Configuration errors name the file, the field path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import load_config
from broker.errors import ConfigError
from tests.harness import base_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.yaml"
    path.write_text(text)
    return path


def test_example_configs_in_the_repo_validate():
    import yaml

    from broker.config import Config

    paths = list(Path("config").glob("*.yaml"))
    assert paths
    for path in paths:
        Config.model_validate(yaml.safe_load(path.read_text()))  # files it names need not exist for this


def test_the_example_portal_sends_and_prepares_one_list_of_groups_and_enrols_by_rule():
    import yaml

    from broker.config import Config
    from broker.model import Claims
    from broker.provisioning.plan import desired_state
    from broker.rules.portal_groups import portal_groups

    academy = Config.model_validate(yaml.safe_load(Path("config/broker.example.yaml").read_text())).portals[
        "academy"
    ]
    groups = portal_groups(["LU-Sales", "All Staff", "Everyone", "VPN Users"], academy.groups)
    assert groups == ("Sales", "Everyone at Contoso", "Contoso Learners")
    desired = desired_state(Claims(email="kim@contoso.example"), academy.provisioning, groups)
    assert desired.groups == groups  # what pre-provisioning creates and joins is what the assertion names
    assert desired.planned_enrollments() == [
        "course 1234567", "course 'Code of Conduct 2026'", "course 'Pricing Basics'",
        "learning path 'Sales Onboarding'",
    ]  # fmt: skip
    assert desired.is_managed("Sales") and desired.is_managed("everyone at contoso")
    assert not desired.is_managed("Contoso Learners")


def test_a_managed_group_named_before_prefix_stripping_is_refused(tmp_path):
    from broker.config import PortalSettings

    with pytest.raises(ValueError, match="managed group 'LU-\\*' can never match"):
        PortalSettings(upstream="entra", groups={"strip_prefixes": ["LU-"]},
                       provisioning={"managed_group_patterns": ["LU-*"]})  # fmt: skip


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path, "broker:\n  base_url: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broker\.yaml: line \d+, column \d+: not valid YAML"):
        load_config(path)


def test_field_errors_name_file_path_and_reason(tmp_path, keys):
    import yaml

    data = base_config(keys)
    data["broker"]["base_url"] = "not a url"
    data["broker"]["clock_skew_seconds"] = -5
    data["portals"]["academy"]["algorithm"] = "md5"
    path = write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}: broker.base_url: must be an absolute http(s) URL" in message
    assert f"{path}: broker.clock_skew_seconds:" in message
    assert f"{path}: portals.academy.algorithm:" in message and "rsa-sha256" in message


def test_unknown_upstream_reference(tmp_path, keys):
    import yaml

    data = base_config(keys)
    data["portals"]["academy"]["upstream"] = "okta"
    with pytest.raises(ConfigError, match=r"portals\.academy: unknown upstream 'okta' \(known: entra\)"):
        load_config(write(tmp_path, yaml.safe_dump(data)))


def test_unknown_field_is_refused(tmp_path, keys):
    import yaml

    data = base_config(keys)
    data["portals"]["academy"]["acs"] = "typo"
    with pytest.raises(ConfigError, match=r"portals\.academy\.acs: Extra inputs are not permitted"):
        load_config(write(tmp_path, yaml.safe_dump(data)))


def test_relative_paths_are_relative_to_the_config_file(tmp_path, keys):
    import shutil

    import yaml

    (tmp_path / "certs").mkdir()
    for name in ("broker.key", "broker.crt"):
        shutil.copy(keys.folder / name, tmp_path / "certs" / name)
    data = base_config(keys)
    data["broker"]["signing"] = {"key": "certs/broker.key", "cert": "certs/broker.crt"}
    config = load_config(write(tmp_path, yaml.safe_dump(data)))
    assert config.broker.signing.key == tmp_path / "certs" / "broker.key"


def test_key_that_does_not_match_cert_is_a_config_error(tmp_path, keys):
    from broker.app import create_app
    from broker.config import config_from_dict

    data = base_config(keys)
    data["broker"]["signing"] = {"key": keys.path("idp", "key"), "cert": keys.path("broker", "crt")}
    with pytest.raises(ConfigError, match="does not match the private key"):
        create_app(config_from_dict(data))


def test_demo_config_validates(tmp_path):
    from broker.demo.run import DemoUrls, demo_config

    config = demo_config(tmp_path, DemoUrls.on_ports("127.0.0.1", 8470))
    assert set(config.portals) == {"academy", "sales"} and set(config.upstreams) == {"entra", "okta"}


def test_the_upstream_name_choose_is_reserved(tmp_path, keys):
    import yaml

    data = base_config(keys)
    data["upstreams"]["choose"] = data["upstreams"]["entra"]
    path = write(tmp_path, yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert (
        f"{path}: " in message and "upstreams.choose: the name 'choose' is reserved (?idp=choose" in message
    )
