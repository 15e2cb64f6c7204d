"""A real Redis connection that notes what each thread sends: every command, script or pipeline sent is one
round trip. For tests that count a request's round trips, or the batch writer's."""

from __future__ import annotations

import re
import threading

import redis

from broker.store.redis import RedisStore

SETUP = {"HELLO", "AUTH", "SELECT", "CLIENT", "CLIENT+CLIENT"}  # a new connection's handshake


class CountingConnection(redis.Connection):
    sent: list[tuple[str, str]] = []  # (thread, the commands of one send, e.g. "EVALSHA" or "SET+SET")

    def send_packed_command(self, command, check_health=True):
        packed = b"".join(bytes(part) for part in command) if isinstance(command, list) else bytes(command)
        names = re.findall(rb"(?:^|\r\n)\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n", packed)
        sent = b"+".join(names).decode().upper()
        if sent not in SETUP:  # not a round trip of the caller's own
            CountingConnection.sent.append((threading.current_thread().name, sent))
        return super().send_packed_command(command, check_health)


def counted_store(url: str, namespace: str) -> RedisStore:
    return RedisStore(redis.Redis.from_url(url, connection_class=CountingConnection), namespace=namespace)


def sent_by(thread: str) -> list[str]:
    return [sent for name, sent in CountingConnection.sent if name == thread]
