"""Configuration reload without restart: SIGHUP, POST /admin/reload, or a changed config file.

The new configuration is loaded and the runtime rebuilt completely before it replaces the old one in one
assignment; an invalid configuration keeps the old one and says why. Every process (gunicorn worker,
replica) notices a reload asked for anywhere through a generation counter in the shared store.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from flask import Flask

from broker.config import load_config
from broker.errors import BrokerError
from broker.ops.audit import audit
from broker.runtime import Runtime, build_runtime
from broker.store import keys

log = logging.getLogger("broker.ops.reload")

CHECK_EVERY_SECONDS = 5.0
GENERATION_KEY = keys.CONFIG_GENERATION


@dataclass
class ReloadResult:
    ok: bool
    message: str


class Reloader:
    def __init__(self, app: Flask):
        self.app = app
        self._checked = time.monotonic()
        self._mtime = self._file_mtime()
        self._generation = self._store_generation()

    @property
    def runtime(self) -> Runtime:
        return self.app.extensions["broker"]

    def _file_mtime(self) -> float | None:
        source = self.runtime.config.source
        try:
            return os.stat(source).st_mtime if source else None
        except OSError:
            return None

    def _store_generation(self) -> bytes | None:
        """The announced generation; None when none is announced, or the store cannot say (an outage)."""
        try:
            return self.runtime.store.get(GENERATION_KEY)
        except BrokerError:
            return None

    def reload(self, reason: str) -> ReloadResult:
        """Build a new runtime from the config file; swap it in only when it is complete and valid."""
        old = self.runtime
        if old.config.source is None:
            return ReloadResult(False, "this broker was not started from a config file")
        try:
            config = load_config(old.config.source)
            same_store = config.store.url == old.config.store.url
            new = build_runtime(config, store=old.store if same_store else None, clock=old.clock,
                                metrics=old.metrics)  # fmt: skip
        except BrokerError as exc:
            log.error("configuration reload refused (%s), keeping the running configuration: %s", reason, exc)
            return ReloadResult(False, str(exc))
        self.app.extensions["broker"] = new
        # the old refresher updates the old upstreams dict, which nothing reads any more
        if old.metadata_refresher is not None:
            old.metadata_refresher.stop()
        if new.metadata_refresher is not None:
            new.metadata_refresher.start()
        self._mtime = self._file_mtime()
        audit("config.reloaded", reason=reason, source=str(config.source))
        return ReloadResult(True, f"configuration reloaded from {config.source}")

    def announce(self) -> None:
        """Tell every other process to reload too (they check the store's generation counter)."""
        generation = str(time.time_ns()).encode()
        self.runtime.store.put(GENERATION_KEY, generation, 7 * 86400)
        self._generation = generation

    def maybe_reload(self) -> None:
        """Cheap check, at most every few seconds, from each request: file changed or reload announced."""
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_SECONDS:
            return
        self._checked = now
        generation = self._store_generation()
        mtime = self._file_mtime()
        # Only a new announcement is one: a store that cannot answer, or lost its data (the key is gone after
        # a Redis restart), announces nothing.
        if generation is not None and generation != self._generation:
            self._generation = generation
            self.reload("announced by another process")
        elif mtime is not None and mtime != self._mtime:
            self._mtime = mtime
            self.reload("config file changed")
