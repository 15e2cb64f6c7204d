"""WSGI entry point for gunicorn: `gunicorn 'broker.wsgi:app'` with BROKER_CONFIG=/path/to/broker.yaml."""

from __future__ import annotations

import os

from broker.app import create_app

app = create_app(os.environ.get("BROKER_CONFIG", "config/broker.yaml"))
