"""WSGI entry point for gunicorn: `gunicorn 'broker.wsgi:app'` with BROKER_CONFIG=/path/to/broker.yaml.

Logs are JSON lines on stderr (BROKER_LOG_FORMAT=text for humans). Reload the configuration with
POST /admin/reload or by editing the file: every worker picks it up within seconds, and an invalid file
keeps the running configuration (gunicorn's own SIGHUP restarts workers instead).
"""

from __future__ import annotations

import os

from broker.app import create_app
from broker.ops.observability import configure_logging

configure_logging()
app = create_app(os.environ.get("BROKER_CONFIG", "config/broker.yaml"))
