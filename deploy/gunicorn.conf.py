"""gunicorn settings for the broker: `gunicorn -c deploy/gunicorn.conf.py broker.wsgi:app`.

Every value can be changed with an environment variable, so the container image needs no other file.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile


def _cpu_limit() -> int:
    """CPUs this process may use: the container's cgroup quota when there is one, else the CPUs it may run on."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as limits:
            quota, period = limits.read().split()
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Where to listen. PORT is also what the image's HEALTHCHECK calls.
bind = os.environ.get("BROKER_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")


def _store_is_shared() -> bool:
    """False when the broker will use the in-memory store, whose pending logins live in one process only."""
    if os.environ.get("REDIS_URL"):
        return True
    try:
        import yaml

        with open(os.environ.get("BROKER_CONFIG", "config/broker.yaml"), encoding="utf-8-sig") as file:
            url = str(((yaml.safe_load(file) or {}).get("store") or {}).get("url", "memory://"))
    except Exception:  # unreadable or invalid: the broker itself reports the config error with its reason
        return True
    return not url.startswith("memory")


# Logins are CPU-bound (one RSA verify + one RSA sign each), so about one worker per core; threads cover the
# waits on LearnUpon's API and Microsoft Graph during provisioning and group lookups. With the memory:// store
# a login started in one worker could come back to another that never saw it: one worker then.
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, _cpu_limit())))
if workers > 1 and not _store_is_shared():
    print(  # gunicorn's logger is not set up yet when this file is read
        f"gunicorn.conf.py: store is memory:// so 1 worker instead of {workers}; set REDIS_URL to run more",
        file=sys.stderr,
    )
    workers = 1
# gthread: see bench/README.md ("Which worker class") for the comparison with sync and gevent behind this choice.
worker_class = os.environ.get("BROKER_WORKER_CLASS", "gthread")
# 4 threads leave 3 per worker for LearnUpon and Graph calls; single sign-on alone runs better on 2 (bench/README.md,
# "How to size workers").
threads = int(os.environ.get("BROKER_THREADS", "4"))
# The app keeps one thread per worker out of outside calls (bulkhead), so /healthz never waits behind them.
os.environ["BROKER_THREADS"] = str(threads)

# Each worker builds its own runtime (keys, metadata, store connection) and starts its own metadata refresh
# thread after the fork; a preloaded app would start that thread in the master, where it does no good.
preload_app = False

timeout = int(os.environ.get("BROKER_WORKER_TIMEOUT", "60"))  # provisioning may wait on LearnUpon's API
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("BROKER_MAX_REQUESTS", "10000"))
max_requests_jitter = max_requests // 10

# Heartbeat files in memory: a container's overlay filesystem can stall them and get workers killed.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (not a temp file of ours)

# Logs go to stdout/stderr for the container runtime. The access log shows the path without its query string:
# /login?login_hint=... and ?target=... carry e-mail addresses and deep links. Client address first as nginx
# saw it (X-Forwarded-For), then the peer.
accesslog = os.environ.get("BROKER_ACCESS_LOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("BROKER_LOG_LEVEL", "info")
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

# The TLS-terminating proxy in front (nginx, a cloud load balancer) sets X-Forwarded-For / -Proto; trust only it.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus counters from every worker: broker/web/health.py adds them up when PROMETHEUS_MULTIPROC_DIR is set.
# A fresh folder per start (under /tmp, a tmpfs in the compose example) so no stale worker files are counted.
if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="broker-metrics-")


def on_starting(server) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:  # a folder given from outside may hold files of an earlier run
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
