"""Real processes to break: a redis-server that can be killed, frozen (SIGSTOP) and restarted on its port, and
a TCP proxy that can swallow one answer (the connection closes after the command reached the server)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import _free_port


class RedisProcess:
    """A private redis-server on a fixed loopback port; `persist` turns the append-only file on."""

    def __init__(self, folder: Path, *, persist: bool = False, extra: tuple[str, ...] = ()):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not installed")
        self.binary, self.folder, self.persist, self.extra = binary, folder, persist, extra
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--save", "", "--appendonly", "yes" if self.persist else "no", *self.extra]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise TimeoutError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP: the port stays open, nothing answers (a hung server, a network partition)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)


class AnswerSwallowingProxy:
    """Forwards TCP to `target_port`; when armed, the first client command containing `marker` reaches the
    server but the connection is then closed before the answer comes back (a reset between write and reply)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.marker: bytes | None = None
        self.swallowed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes) -> None:
        self.marker = marker

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump_requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump_requests(self, client: socket.socket, server: socket.socket) -> None:
        seen = b""  # the marker may straddle two reads
        try:
            while data := client.recv(65536):
                server.sendall(data)
                seen = seen[-256:] + data
                if self.marker is not None and self.marker in seen:
                    self.marker = None
                    self.swallowed += 1
                    time.sleep(0.2)  # the server runs the command; its answer is then lost with the link
                    client.close()
                    server.close()
                    return
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()
