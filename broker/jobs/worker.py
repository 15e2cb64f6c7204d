"""`broker worker`: an RQ worker for the broker's queue, with the broker's runtime loaded once. Every task of
broker.jobs.registry runs here: leftover provisioning, `broker provision` rows, `broker review --apply`."""

from __future__ import annotations

import logging
from pathlib import Path

from broker.config import load_config
from broker.errors import ConfigError
from broker.jobs.queue import QUEUE_NAME, SERIALIZER, rq_connection
from broker.jobs.registry import use_runtime
from broker.ops.observability import configure_logging
from broker.runtime import build_runtime

log = logging.getLogger(__name__)


def run_worker(config_path: Path, *, burst: bool = False) -> None:
    from rq import Queue, SimpleWorker

    configure_logging()
    config = load_config(config_path)
    if config.broker.demo:
        # the demo's fakes check demo-only credentials; a demo config gets them as `broker demo` does
        import os

        from broker.demo.run import DEMO_SECRETS

        for variable, value in DEMO_SECRETS.items():
            os.environ.setdefault(variable, value)
    rt = build_runtime(config)
    connection = rq_connection(rt.store)
    if connection is None:
        raise ConfigError(
            f"{config_path}: store.url: background jobs need one Redis (redis://, rediss://, unix:// or "
            "redis+sentinel://); with memory:// jobs run inside the broker, and RQ does not support a cluster"
        )
    use_runtime(rt)
    # SimpleWorker runs jobs in this process (no fork per job): the runtime, its keys and its HTTP
    # connection pools are loaded once; the jobs are HTTP calls, not CPU work.
    worker = SimpleWorker(
        [Queue(QUEUE_NAME, connection=connection, serializer=SERIALIZER)],
        connection=connection,
        serializer=SERIALIZER,
    )
    log.info("broker worker: taking jobs from queue %r", QUEUE_NAME)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
