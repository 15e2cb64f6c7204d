"""`broker check`: is this deployment ready to sign people in? One result per thing checked.

Config, signing keys (readable, RSA, private, matching their certificate), certificate expiry (broker, portals,
next certificates, upstream IdPs), upstream metadata, the state store, the credentials of Graph and the
LearnUpon API, and the contrast of the learner pages' colours. `online=True` also makes one harmless call to Graph and to each LearnUpon API.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from broker.config import load_config
from broker.errors import ConfigError
from broker.tools.check.branding import check_branding
from broker.tools.check.certificates import check_signing, check_upstreams
from broker.tools.check.result import CheckResult as CheckResult  # re-exported: the results of run_checks
from broker.tools.check.result import count
from broker.tools.check.result import worst as worst
from broker.tools.check.services import check_graph, check_learnupon
from broker.tools.check.settings import check_broker_settings, check_store, check_trust_boundaries


def run_checks(
    config_path: str | Path,
    *,
    online: bool = False,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> list[CheckResult]:
    """Every check, in a stable order. A config that does not load is the only result."""
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [CheckResult("FAIL", "config", str(exc))]
    results = [
        CheckResult(
            "OK",
            "config",
            f"{config_path} is valid: {count(len(config.portals), 'portal')}, "
            f"{count(len(config.upstreams), 'upstream')}",
        )
    ]
    results += check_broker_settings(config, env)
    results += check_trust_boundaries(config)
    results += check_signing(config, now)
    results += check_upstreams(config, now)
    results += check_store(config)
    results += check_graph(config, env, online)
    results += check_learnupon(config, env, online)
    results += check_branding(config)
    return results
