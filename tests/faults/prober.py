"""A health probe in its own process, as Docker's or Kubernetes' would be: GET `path` on a new connection every
`interval` seconds for `seconds`, then print each probe's (status, seconds) as JSON. Apart from the test
process, so the latencies are the broker's and not the GIL of a test busy signing logins.

    python -m tests.faults.prober http://127.0.0.1:8000/healthz 4.0 0.05
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from urllib.parse import urlsplit


def probe(url: str, timeout: float = 10.0) -> tuple[int, float]:
    parts = urlsplit(url)
    started = time.monotonic()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except OSError:
        return 0, time.monotonic() - started
    finally:
        connection.close()


def main(url: str, seconds: float, interval: float) -> None:
    results = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        results.append(probe(url))
        time.sleep(interval)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))
