"""The same proxied login done the pysaml2 way (xmlsec1 processes) against the broker's ACS, in one run.

pysaml2-based proxies (SATOSA and friends) verify the upstream response with pysaml2's default backend, which
runs the `xmlsec1` binary (a process per operation, with temporary files, plus `xmlsec1 --version` checks),
and sign the new assertion for the portal the same way. Here, for every login, both sides get a fresh,
uniquely signed Entra-shaped response from the test IdP for a pending request of their own:

  pysaml2: Saml2Client.parse_authn_request_response (xmlsec1 --verify)  → identity
           Server.create_authn_response(sign_assertion=True) (xmlsec1 --sign) → apply_binding (auto-post form)
  broker:  POST /saml/acs through the Flask app (WSGI, no network) → auto-post form
           and, like for like with the pysaml2 path, its SAML steps alone: validate_response + issue_response

Per-login wall time (what the browser waits for) and CPU time including child processes (what the machine
pays: xmlsec1 runs outside the Python process) are reported as medians, measured in alternating blocks.
Skipped, with a message, when `xmlsec1` is not installed.

    python bench/vs_xmlsec1.py [--pysaml2-logins 60] [--broker-logins 600]
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from common import (
    ACS_URL,
    BASE_URL,
    IDP_ENTITY,
    PORTAL,
    SP_ENTITY,
    TENANT,
    acs_environ,
    bench_user,
    median_ms,
    signed_response,
)
from login_cpu import setup

from broker.demo.idp_response import ENTRA_GROUPS
from broker.saml.assertion import issue_response
from broker.saml.metadata import idp_metadata, sp_metadata

PORTAL_ENTITY = "https://academy.learnupon.com"
PORTAL_ACS = "https://academy.learnupon.com/saml/consumer"
BLOCKS = 6


def pysaml2_proxy(folder: Path, keys, xmlsec1: str):
    """A pysaml2 SP facing the upstream and a pysaml2 IdP facing the portal: what a pysaml2 proxy holds."""
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import IdPConfig, SPConfig
    from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS
    from saml2.server import Server
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    upstream_md = folder / "upstream-idp.xml"
    upstream_md.write_bytes(idp_metadata(IDP_ENTITY, f"https://login.microsoftonline.com/{TENANT}/saml2",
                                         [keys["idp"]]))  # fmt: skip
    portal_md = folder / "portal-sp.xml"
    portal_md.write_bytes(sp_metadata(PORTAL_ENTITY, PORTAL_ACS, keys["broker"], sign_requests=False))
    sp = Saml2Client(config=SPConfig().load({
        "entityid": SP_ENTITY, "xmlsec_binary": xmlsec1, "metadata": {"local": [str(upstream_md)]},
        "allow_unknown_attributes": True,
        "service": {"sp": {"endpoints": {"assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)]},
                           "want_assertions_signed": True, "want_response_signed": False}},
    }))  # fmt: skip
    idp = Server(config=IdPConfig().load({
        "entityid": f"{BASE_URL}/idp", "xmlsec_binary": xmlsec1,
        "key_file": str(folder / "broker.key"), "cert_file": str(folder / "broker.crt"),
        "metadata": {"local": [str(portal_md)]},
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{BASE_URL}/idp/sso", BINDING_HTTP_REDIRECT)]},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            # under service.idp: pysaml2 7.5 ignores top-level algorithms in Server and signs with rsa-sha1
            "signing_algorithm": SIG_RSA_SHA256, "digest_algorithm": DIGEST_SHA256,
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_URI}},
        }},
    }))  # fmt: skip
    return sp, idp


def pysaml2_login(sp, idp, saml_response: str, request_id: str, relay_state: str) -> dict:
    """Verify the upstream response, then issue and sign the portal's assertion and build the form."""
    from saml2 import BINDING_HTTP_POST
    from saml2.saml import AUTHN_PASSWORD_PROTECTED, NAMEID_FORMAT_EMAILADDRESS, NameID

    accepted = sp.parse_authn_request_response(
        saml_response, BINDING_HTTP_POST, outstanding={request_id: "/"}
    )
    identity = accepted.get_identity()  # pysaml2 renames the claims it knows (givenName, surname, ...)
    email = accepted.name_id.text
    outgoing = idp.create_authn_response(
        {"email": [email], "firstName": identity["givenName"], "lastName": identity["surname"],
         "groups": identity.get(ENTRA_GROUPS, [])},
        in_response_to=None, destination=PORTAL_ACS, sp_entity_id=PORTAL_ENTITY, userid=email,
        name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
        authn={"class_ref": AUTHN_PASSWORD_PROTECTED, "authn_auth": f"{BASE_URL}/idp"},
        sign_assertion=True, sign_response=False,
    )  # fmt: skip
    return idp.apply_binding(BINDING_HTTP_POST, str(outgoing), PORTAL_ACS, relay_state, response=True)


def cpu_now() -> float:
    """CPU seconds of this process and of its finished children (xmlsec1 runs as a child)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure_pysaml2(sp, idp, keys, user, count: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    inputs = []
    for n in range(count):  # the IdP's work, outside the clock
        request_id = f"_bench{os.getpid()}x{time.time_ns()}x{n}"
        inputs.append((base64.b64encode(signed_response(keys, user, request_id)).decode(), request_id))
    for saml_response, request_id in inputs:
        start_wall, start_cpu = time.perf_counter(), cpu_now()
        form = pysaml2_login(sp, idp, saml_response, request_id, "/dashboard")
        wall.append(time.perf_counter() - start_wall)
        cpu.append(cpu_now() - start_cpu)
        assert "SAMLResponse" in str(form["data"]), form
    return wall, cpu


def measure_broker(app, keys, user, count: int) -> tuple[list[float], list[float]]:
    from common import prepare_logins

    prepared = prepare_logins(app, keys, user, count)
    environs = [acs_environ(body, ip) for body, _, ip in prepared]
    wall, cpu = [], []
    for environ in environs:
        start_wall, start_cpu = time.perf_counter(), cpu_now()
        page = b"".join(app(environ, lambda *_: None))
        wall.append(time.perf_counter() - start_wall)
        cpu.append(cpu_now() - start_cpu)
        assert b'name="SAMLResponse"' in page
    return wall, cpu


def measure_broker_saml(app, keys, user, count: int) -> list[float]:
    """Only the broker's SAML steps, like for like with the pysaml2 path: validate the upstream response
    (every check, signature included) and issue the signed assertion; no HTTP, store, claims or page."""
    from broker.saml.response import Expectations, validate_response

    rt = app.extensions["broker"]
    broker = rt.config.broker
    inputs = []
    for n in range(count):
        request_id = f"_saml{os.getpid()}x{time.time_ns()}x{n}"
        inputs.append((base64.b64encode(signed_response(keys, user, request_id)).decode(), request_id))
    trust = rt.portals[PORTAL].trust
    wall = []
    for saml_response, request_id in inputs:
        start = time.perf_counter()
        expectations = Expectations("entra", rt.upstreams["entra"].idp, broker.sp_entity, broker.acs_url, request_id,
                                    rt.clock(), rt.skew, broker.max_response_bytes)  # fmt: skip
        identity = validate_response(saml_response, expectations).identity
        issue_response(trust, identity.name_id, {"groups": tuple(user.groups)}, now=rt.clock())
        wall.append(time.perf_counter() - start)
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pysaml2-logins", type=int, default=60)
    parser.add_argument("--broker-logins", type=int, default=600)
    args = parser.parse_args()
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        print("skipped: the xmlsec1 binary is not installed (pysaml2's default signing backend); "
              "install it (Debian/Ubuntu: apt-get install xmlsec1) to compare")  # fmt: skip
        return
    logging.getLogger("saml2").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")  # pysaml2's import-time deprecation warnings from cryptography
    with tempfile.TemporaryDirectory() as folder:
        app, keys, _ = setup(Path(folder))
        user = bench_user(3)
        sp, idp = pysaml2_proxy(Path(folder), keys, xmlsec1)
        measure_pysaml2(sp, idp, keys, user, 3)  # warm-up
        measure_broker(app, keys, user, 30)
        measure_broker_saml(app, keys, user, 20)
        results = {"pysaml2": ([], []), "broker": ([], [])}
        saml_only: list[float] = []
        for block in range(BLOCKS):
            steps = [("pysaml2", lambda: measure_pysaml2(sp, idp, keys, user, args.pysaml2_logins // BLOCKS)),
                     ("broker", lambda: measure_broker(app, keys, user, args.broker_logins // BLOCKS))]  # fmt: skip
            for name, step in steps if block % 2 else reversed(steps):
                wall, cpu = step()
                results[name][0].extend(wall)
                results[name][1].extend(cpu)
            saml_only.extend(measure_broker_saml(app, keys, user, args.broker_logins // BLOCKS // 3))
    (p_wall, p_cpu), (b_wall, b_cpu) = results["pysaml2"], results["broker"]
    print(
        f"xmlsec1: {xmlsec1}   pysaml2 logins {len(p_wall)}, broker logins {len(b_wall)} (alternating blocks)"
    )
    print(
        f"pysaml2 + xmlsec1:  median {median_ms(p_wall):7.2f} ms wall   {median_ms(p_cpu):7.2f} ms CPU (incl. xmlsec1)"
    )
    print(f"broker ACS:         median {median_ms(b_wall):7.2f} ms wall   {median_ms(b_cpu):7.2f} ms CPU")
    print(
        f"broker SAML steps:  median {median_ms(saml_only):7.2f} ms wall   (validate + issue only, like for like "
        "with the pysaml2 path)"
    )
    print(f"broker faster by:   {median_ms(p_wall) / median_ms(b_wall):.1f}x wall   "
          f"{median_ms(p_cpu) / median_ms(b_cpu):.1f}x CPU   (whole ACS request; target ≥ 30x)")  # fmt: skip
    print(f"                    {median_ms(p_wall) / median_ms(saml_only):.1f}x wall   (SAML steps only)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
