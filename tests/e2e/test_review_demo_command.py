"""`broker demo` prints a ready `broker review` command line; run as printed, its JSON names every planted
account with its category and reason."""

from __future__ import annotations

import json
import os
import random
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker.demo.review_cases import PLANTED

BROKER = str(Path(sys.executable).with_name("broker"))


def free_port_block(size: int = 4) -> int:
    for _ in range(50):
        base = random.randint(20_000, 60_000)
        try:
            sockets = []
            for port in range(base, base + size):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports")


@pytest.mark.slow
def test_broker_demo_prints_a_review_command_that_reports_the_planted_cases(tmp_path):
    port = free_port_block()
    demo = subprocess.Popen([BROKER, "demo", "--dir", str(tmp_path / "demo"), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)  # fmt: skip
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl+C" in line:
                break
        command = next(line.strip() for line in lines if line.strip().startswith("broker review"))
        args = shlex.split(command)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("DEMO_")
        }  # as a fresh shell would have
        done = subprocess.run(
            [BROKER, *args[1:]], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
        )
        assert done.returncode == 0, done.stderr
        [report] = json.loads(done.stdout)["reports"]
        by_email = {a["email"]: a for a in report["accounts"]}
        for email, (_, category) in PLANTED.items():
            assert by_email[email]["category"] == category
            assert by_email[email]["reason"]
    finally:
        demo.terminate()
        demo.wait(timeout=10)
