"""Fixtures for interoperability with pysaml2: keys, a pysaml2 IdP standing in for Entra, a pysaml2 SP
standing in for a LearnUpon portal.

pysaml2 signs and verifies with its default backend, which runs the `xmlsec1` binary; the broker itself never
does. Without the binary these tests are skipped, except under CI (the `CI` variable), where they must run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from broker.keys import KeyPair, generate_key_pair

# The pysaml2 IdP plays Microsoft Entra ID (issuer shape and claim URIs); the broker is reached at BROKER_URL.
UPSTREAM_ENTITY_ID = "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/"
UPSTREAM_SSO_URL = "https://login.microsoftonline.test/9188040d-6c67-4c5b-b112-36a304b66dad/saml2"
BROKER_URL = "https://sso.example.test"
BROKER_SP_ENTITY_ID = f"{BROKER_URL}/saml/metadata"
BROKER_ACS_URL = f"{BROKER_URL}/saml/acs"
BROKER_IDP_ENTITY_ID = f"{BROKER_URL}/idp"
PORTAL = "academy"
PORTAL_AUDIENCE = "https://academy.learnupon.test"
PORTAL_ACS_URL = "https://academy.learnupon.test/saml/consumer"


@dataclass(frozen=True)
class KeyFiles:
    key: Path
    cert: Path
    pair: KeyPair


@pytest.fixture(scope="session")
def xmlsec1_binary() -> str:
    """Tests signed by pysaml2 or xmlsec1 need the binary: skip without it, but never silently under CI."""
    binary = shutil.which("xmlsec1")
    if binary is None:
        reason = (
            "the xmlsec1 binary is not installed (pysaml2's signing backend); install the xmlsec1 package"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the pysaml2 interop tests must run, but {reason}")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def interop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interop")


def _keys(folder: Path, name: str, common_name: str) -> KeyFiles:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    return KeyFiles(key, cert, generate_key_pair(key, cert, common_name))


@pytest.fixture(scope="session")
def upstream_keys(interop_dir: Path) -> KeyFiles:
    """The pysaml2 IdP's signing key (the upstream, Entra's role)."""
    return _keys(interop_dir, "upstream", "pysaml2 upstream IdP")


@pytest.fixture(scope="session")
def broker_keys(interop_dir: Path) -> KeyFiles:
    """The broker's own key: SP metadata towards the upstream, and assertions towards the portal."""
    return _keys(interop_dir, "broker", "broker")


def upstream_idp_config(
    folder: Path,
    keys: KeyFiles,
    sp_metadata_xml: bytes | None,
    xmlsec1: str,
    *,
    signing_algorithm: str = SIG_RSA_SHA256,
    digest_algorithm: str = DIGEST_SHA256,
) -> IdPConfig:
    """A pysaml2 IdP that knows the broker from the broker's SP metadata (None: knows no SP yet, enough to
    write its own metadata).

    The algorithms go under `service.idp`: pysaml2 7.5 reads them in the IdP context, so top-level
    `signing_algorithm`/`digest_algorithm` are silently ignored by `Server`, which then signs with its
    defaults, rsa-sha1 and sha1.
    """
    folder.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, list[str]] = {}
    if sp_metadata_xml is not None:
        sp_metadata_file = folder / "broker-sp-metadata.xml"
        sp_metadata_file.write_bytes(sp_metadata_xml)
        metadata["local"] = [str(sp_metadata_file)]
    return IdPConfig().load(
        {
            "entityid": UPSTREAM_ENTITY_ID,
            "xmlsec_binary": xmlsec1,
            "key_file": str(keys.key),
            "cert_file": str(keys.cert),
            "metadata": metadata,
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [(UPSTREAM_SSO_URL, BINDING_HTTP_REDIRECT)]},
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "signing_algorithm": signing_algorithm,
                    "digest_algorithm": digest_algorithm,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": 60},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_URI,
                        }
                    },
                }
            },
        }
    )


@pytest.fixture(scope="session")
def upstream_metadata(interop_dir: Path, upstream_keys: KeyFiles, xmlsec1_binary: str) -> bytes:
    """The pysaml2 IdP's metadata, as pysaml2 writes it; the broker reads it like Entra's federation metadata."""
    config = upstream_idp_config(interop_dir / "idp-metadata", upstream_keys, None, xmlsec1_binary)
    return create_metadata_string(None, config=config)


MakeIdp = Callable[..., Server]


@pytest.fixture
def make_upstream_idp(tmp_path: Path, upstream_keys: KeyFiles, xmlsec1_binary: str) -> MakeIdp:
    """`make_upstream_idp(broker_sp_metadata_xml, **algorithms)` → a pysaml2 IdP (`Server`) that trusts the
    broker as described by that metadata."""

    def make(sp_metadata_xml: bytes, **algorithms: str) -> Server:
        config = upstream_idp_config(
            tmp_path / "idp", upstream_keys, sp_metadata_xml, xmlsec1_binary, **algorithms
        )
        return Server(config=config)

    return make


MakePortal = Callable[..., Saml2Client]


@pytest.fixture
def make_portal_sp(tmp_path: Path, xmlsec1_binary: str) -> MakePortal:
    """`make_portal_sp(broker_idp_metadata_xml, want_response_signed=...)` → a pysaml2 SP playing LearnUpon:
    IdP-initiated only (unsolicited allowed), assertions must be signed."""

    def make(idp_metadata_xml: bytes, *, want_response_signed: bool = False) -> Saml2Client:
        folder = tmp_path / "portal"
        folder.mkdir(parents=True, exist_ok=True)
        metadata_file = folder / "broker-idp-metadata.xml"
        metadata_file.write_bytes(idp_metadata_xml)
        config = SPConfig().load(
            {
                "entityid": PORTAL_AUDIENCE,
                "xmlsec_binary": xmlsec1_binary,
                "metadata": {"local": [str(metadata_file)]},
                # Keep attributes pysaml2 has no converter for (e.g. "groups") in the parsed identity.
                "allow_unknown_attributes": True,
                "service": {
                    "sp": {
                        "endpoints": {"assertion_consumer_service": [(PORTAL_ACS_URL, BINDING_HTTP_POST)]},
                        "allow_unsolicited": True,
                        "want_assertions_signed": True,
                        "want_response_signed": want_response_signed,
                    }
                },
            }
        )
        return Saml2Client(config=config)

    return make
