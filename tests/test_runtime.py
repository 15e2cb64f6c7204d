"""The runtime: one Upstream and one Portal object per configured name, each carrying what was loaded for it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.harness import IDP_ENTITY, Harness


def test_each_upstream_and_portal_is_one_object_with_what_was_loaded_for_it(keys):
    rt = Harness(keys).runtime
    assert set(rt.upstreams) == {"entra"} and set(rt.portals) == {"academy", "sales"}
    entra = rt.upstreams["entra"]
    assert (entra.name, entra.entity_id, entra.settings.preset) == ("entra", IDP_ENTITY, "entra")
    assert entra.claim_names.email and entra.directory is None
    sales = rt.portals["sales"]
    assert (sales.trust.algorithm, sales.trust.key_pair.certificate) == ("rsa-sha1", keys.portal.certificate)
    assert sales.learnupon is None and sales.next_certificate is None
    assert rt.portals["academy"].trust.key_pair.certificate == keys.broker.certificate


def test_refreshed_metadata_lands_in_its_upstream(keys):
    rt = Harness(keys).runtime
    refreshed = replace(rt.upstreams["entra"].idp, certificates=(keys.idp_next.certificate,))
    rt.upstream_metadata["entra"] = refreshed  # what the metadata refresher does
    assert rt.upstreams["entra"].idp is refreshed
    assert dict(rt.upstream_metadata) == {"entra": refreshed}
    with pytest.raises(TypeError):
        del rt.upstream_metadata["entra"]
