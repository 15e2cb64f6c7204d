"""scim2-tester, the python-scim project's RFC 7643/7644 checker, against the live endpoint over loopback HTTP."""

from __future__ import annotations

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from broker.app import create_app
from broker.config import config_from_dict
from broker.demo.webserver import BackgroundServer, LateApp
from broker.store.memory import MemoryStore
from tests.scim.conftest import TOKEN, scim_config


@pytest.fixture
def live_broker(keys, portals, _fake_portals):
    late = LateApp()
    with BackgroundServer(late) as server:
        # scim2-tester makes users with random addresses (uuid@uuid.com), which a client speaking for a scoped
        # upstream may not write (broker/scim/trust.py): it runs as a client without upstream, which may write
        # any address no upstream's email_domains claims
        clients = [{"name": "conformance", "token_sha256_env": "SCIM_TEST_ENTRA_TOKEN_SHA256"}]
        config = config_from_dict(
            scim_config(keys, _fake_portals[1].url, broker__base_url=server.url, scim__clients=clients)
        )
        late.app = create_app(config, store=MemoryStore())
        yield server


def run_checker(base_url: str, token: str = TOKEN):
    with httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        return check_server(SyncSCIMClient(http))


@pytest.mark.slow
def test_scim2_tester_passes_on_the_all_portals_endpoint(live_broker, portals):
    results = run_checker(live_broker.url + "/scim/v2")
    for r in results:
        print(r.status.name, r.title, r.reason or "")
    failed = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    assert results and not failed, [(r.title, r.reason) for r in failed]
