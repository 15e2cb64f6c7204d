"""Per-login CPU cost of the ACS (SAMLResponse in → auto-post form out) against its cryptographic floor.

The floor is measured in the same run with the same keys and documents: one XML-DSig verification of the
upstream assertion plus one XML-DSig signature of the outgoing assertion (signxml, key objects loaded once).
The login is measured through the Flask app (WSGI, no network), so parsing, every check, the replay cache,
claim mapping, routing, template rendering and the request/response plumbing are all included.

    python bench/login_cpu.py [--logins 400]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from broker.app import create_app
from broker.config import config_from_dict
from broker.demo.idp_response import DemoUser, ResponseSpec, build_response, encode
from broker.keys import generate_key_pair
from broker.saml.assertion import PortalTrust, build_assertion
from broker.saml.authn_request import decode_redirect_request
from broker.saml.xml import SAML, qname
from broker.saml.xmldsig import sign_enveloped

TENANT = "7f3c2a9e-5b1d-4e8f-9a6c-2d4b8e1f0a37"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def setup(folder: Path, groups: int = 3):
    keys = {name: generate_key_pair(folder / f"{name}.key", folder / f"{name}.crt", name) for name in
            ("broker", "idp")}  # fmt: skip
    config = config_from_dict({
        "broker": {"base_url": "https://broker.bench",
                   "signing": {"key": str(folder / "broker.key"), "cert": str(folder / "broker.crt")}},
        "upstreams": {"entra": {"preset": "entra", "entity_id": f"https://sts.windows.net/{TENANT}/",
                                "sso_url": f"https://login.microsoftonline.com/{TENANT}/saml2",
                                "certificates": [str(folder / "idp.crt")]}},
        "portals": {"academy": {"upstream": "entra"}},
    })  # fmt: skip
    app = create_app(config)
    user = DemoUser("alex@contoso.example", "Alex", "Morgan", "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41",
                    [f"group-{i}" for i in range(groups)])  # fmt: skip
    return app, keys, user


def prepare_logins(app, keys, user, count: int) -> list[tuple[str, str, bytes]]:
    """Start `count` logins and have the IdP answer each (outside the timed part)."""
    from urllib.parse import parse_qs, urlsplit

    client = app.test_client()
    prepared = []
    for _ in range(count):
        location = client.get("/login/academy").headers["Location"]
        params = parse_qs(urlsplit(location).query)
        request_id = etree.fromstring(decode_redirect_request(params["SAMLRequest"][0])).get("ID")
        spec = ResponseSpec(
            issuer=f"https://sts.windows.net/{TENANT}/", destination="https://broker.bench/saml/acs",
            audience="https://broker.bench/saml/metadata", name_id=user.email,
            attributes=user.entra_attributes(TENANT), in_response_to=request_id, now=datetime.now(UTC),
        )  # fmt: skip
        document = build_response(spec, keys["idp"])
        prepared.append((encode(document), params["RelayState"][0], document))
    return prepared


def acs_environ(body: bytes) -> dict:
    """The WSGI environ a server hands the app for the browser's POST (built before the clock starts)."""
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/saml/acs", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "broker.bench", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "broker.bench", "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }  # fmt: skip


def measure_logins(app, prepared) -> list[float]:
    """Time the WSGI call from request in to the complete auto-post page out."""
    environs = [acs_environ(urlencode({"SAMLResponse": s, "RelayState": r}).encode()) for s, r, _ in prepared]
    statuses = []
    timings = []
    for environ in environs:
        start = time.perf_counter()
        body = b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
        timings.append(time.perf_counter() - start)
        assert statuses[-1].startswith("200") and b"SAMLResponse" in body, body[:300]
    return timings


def measure_floor(keys, prepared, user) -> list[float]:
    """One verify of the upstream assertion + one sign of an outgoing assertion, as raw signxml calls."""
    trust = PortalTrust("https://broker.bench/idp", "https://academy.learnupon.com/saml/consumer",
                        "https://academy.learnupon.com", keys["broker"])  # fmt: skip
    config = SignatureConfiguration(location="./", expect_references=1)
    cert = keys["idp"].certificate
    timings = []
    for _, _, document in prepared:
        assertion = etree.fromstring(document).find(qname(SAML, "Assertion"))
        outgoing = build_assertion(trust, user.email, {"groups": tuple(user.groups)}, now=datetime.now(UTC),
                                   authn_instant=None)  # fmt: skip
        start = time.perf_counter()
        XMLVerifier().verify(assertion, x509_cert=cert, expect_config=config)
        sign_enveloped(outgoing, keys["broker"])
        timings.append(time.perf_counter() - start)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app, keys, user = setup(Path(folder))
        measure_logins(app, prepare_logins(app, keys, user, 30))  # warm-up: imports, caches, templates
        prepared = prepare_logins(app, keys, user, args.logins)
        # Interleave the two measurements in halves so machine noise hits both alike.
        half = len(prepared) // 2
        floor = measure_floor(keys, prepared[:half], user)
        login = measure_logins(app, prepared[:half])
        login += measure_logins(app, prepared[half:])
        floor += measure_floor(keys, prepared[half:], user)
    ms = 1000
    floor_med, login_med = statistics.median(floor) * ms, statistics.median(login) * ms
    print(f"logins measured:            {len(login)}")
    print(
        f"floor (verify + sign):      median {floor_med:.3f} ms   p95 {percentile(floor, 0.95) * ms:.3f} ms"
    )
    print(
        f"login (ACS in → form out):  median {login_med:.3f} ms   p95 {percentile(login, 0.95) * ms:.3f} ms"
    )
    print(f"ratio login / floor:        median {login_med / floor_med:.2f}x   "
          f"p95 {percentile(login, .95) / percentile(floor, .95):.2f}x   (target ≤ 1.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
