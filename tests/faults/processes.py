"""Real processes to break: a redis-server that can be killed, frozen (SIGSTOP) and restarted on its port, and
a TCP proxy that can swallow one answer (the connection closes after the command reached the server)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import _free_port
from tests.faults.prober import probe as probe

REPO = Path(__file__).resolve().parents[2]


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
    server in full and runs, but its answer is dropped and the connection closed (a reset between the write
    and the reply, or an answer that never comes back)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.marker: bytes | None = None
        self.let_through = 0
        self.swallowed = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, *, let_through: int = 0) -> None:
        """`let_through`: bytes of the answer's body that still arrive, after its status line and headers, before
        it is cut off (0: nothing of the answer arrives)."""
        self.marker = marker
        self.let_through = let_through

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the server behind is gone (a late client: e.g. a batch of log entries)
                client.close()
                continue
            muted = threading.Event()
            allowance = [0]  # bytes of the answer's body still let through once muted (after its headers)
            threading.Thread(target=self._pump_requests, args=(client, server, muted, allowance),
                             daemon=True).start()  # fmt: skip
            threading.Thread(target=self._pump_answers, args=(server, client, muted, allowance),
                             daemon=True).start()  # fmt: skip

    def _pump_requests(
        self, client: socket.socket, server: socket.socket, muted: threading.Event, allowance: list[int]
    ) -> None:
        seen = b""  # the marker may straddle two reads
        try:
            while data := client.recv(65536):
                seen = seen[-256:] + data
                if self.marker is not None and self.marker in seen:  # muted before the server can answer
                    self.marker = None
                    self.swallowed += 1
                    allowance[0] = self.let_through
                    muted.set()
                    threading.Timer(0.3, _close_both, (client, server)).start()
                server.sendall(data)  # the rest of the request (a body sent apart) still goes through
        except OSError:
            pass

    @staticmethod
    def _pump_answers(
        server: socket.socket, client: socket.socket, muted: threading.Event, allowance: list[int]
    ) -> None:
        try:
            while data := server.recv(65536):
                if not muted.is_set():
                    client.sendall(data)
                elif allowance[0] > 0:  # an answer cut off midway: its headers, then the start of its body
                    head = data.find(b"\r\n\r\n")
                    end = (head + 4 if head >= 0 else len(data)) + allowance[0]
                    client.sendall(data[:end])
                    allowance[0] = 0 if head >= 0 else allowance[0]
        except OSError:
            pass
        finally:
            _close_both(client, server)

    def close(self) -> None:
        self._listener.close()


def _close_both(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


class DrippingServer:
    """An HTTP server on loopback that answers every request one byte at a time, `interval` seconds apart —
    the body (`where="body"`) or already the status line and headers (`where="headers"`): each read gets
    bytes well within any read timeout, so only a wall-clock deadline stops the caller."""

    def __init__(self, *, where: str = "body", interval: float = 0.05, size: int = 4000):
        self.where, self.interval, self.size = where, interval, size
        self.requests = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            self.requests += 1
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {self.size}\r\n\r\n"
                    ).encode()  # fmt: skip
            if self.where == "body":
                conn.sendall(head)
                drip = b" " * self.size
            else:
                drip = head + b" " * self.size
            for byte in drip:
                conn.sendall(bytes([byte]))
                time.sleep(self.interval)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._listener.close()


class Prober:
    """tests/faults/prober.py in its own process, probing `url` every `interval` s for `seconds` from now."""

    def __init__(self, url: str, *, seconds: float, interval: float = 0.05):
        self.seconds = seconds
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.prober", url, str(seconds), str(interval)],
            cwd=REPO, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def results(self) -> list[tuple[int, float]]:
        """(status, seconds) of each probe, once the run is over."""
        out, _ = self.process.communicate(timeout=self.seconds + 60)
        return [(int(status), float(seconds)) for status, seconds in json.loads(out)]
