"""The same step through the broker and its peers, each against the crypto floor measured in the same run.

The step: an upstream's signed SAML response comes in (for a login the peer started itself) → a page goes out
that auto-posts a newly signed assertion to the portal. Every peer gets a fresh Entra-shaped response signed by
the test IdP (RSA-SHA256, unique IDs) for a pending login of its own; preparing it is outside the clock.

  floor            one signxml verify of the upstream assertion + one signxml sign of an outgoing assertion,
                   in this process (the definition bench/login_cpu.py uses), CPU time of the thread
  broker           POST /saml/acs through the Flask app in this process (WSGI, no network)
  broker HTTP      the same over loopback HTTP to gunicorn (1 worker, 1 thread, memory store), a new
                   connection per login, as PHP's built-in server below needs
  pysaml2          pysaml2 7.x with its default backend (xmlsec1 processes), in this process: SP
                   parse_authn_request_response → IdP create_authn_response(sign_assertion) → POST binding
  SimpleSAMLphp    the Debian package (1.19) as a bridge (saml:SP auth source behind its SAML 2.0 IdP) behind
                   PHP's built-in server with OPcache, config generated in a temporary folder: the login is
                   started at the IdP's SSOService.php for the portal; the step is the POST to the SP's ACS

Each peer's time is wall time per login (sequential, one at a time, so on an idle machine it is its CPU
time), with the server process's CPU per login next to it where the peer runs in another process; ratios are
to the floor's median. Peers run in alternating blocks. A peer that is not installed is skipped with a line
saying so (xmlsec1: apt-get install xmlsec1; SimpleSAMLphp: apt-get install simplesamlphp php-xml
php-mbstring).

    python bench/vs_peers.py [--logins 120] [--pysaml2-logins 30]
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import yaml
from common import IDP_ENTITY, TENANT, acs_environ, config_dict, prepare_logins, user_attributes
from cryptography.hazmat.primitives import serialization
from http_load import cpu_seconds, free_port, gunicorn, worker_pids
from http_load import prepare as prepare_http
from login_cpu import floor_inputs, measure_floor, measure_rsa, setup, signxml_calls
from lxml import etree

from broker.demo.idp_response import ResponseSpec, build_response, encode
from broker.saml.authn_request import decode_redirect_request

SSP_ROOT = Path("/usr/share/simplesamlphp")
PORTAL_ENTITY = "https://academy.learnupon.com"
PORTAL_ACS = "https://academy.learnupon.com/saml/consumer"
ROUNDS = 4


# --- one HTTP exchange on a fresh connection ------------------------------------------------------------------


def exchange(port: int, raw: bytes) -> tuple[int, bytes, bytes]:
    """Send one request on a new connection; (status, head, body), the body read to its Content-Length."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while (length is None or len(body) < length) and (chunk := conn.recv(65536)):
            body += chunk
    return int(head.split(b" ", 2)[1]), head, body


def posts_saml_response(status: int, body: bytes) -> bool:
    return status == 200 and b'name="SAMLResponse"' in body and PORTAL_ACS.encode() in body


# --- SimpleSAMLphp as a bridge ----------------------------------------------------------------------------------


def _php(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ssp_config(folder: Path, base: str, keys) -> Path:
    """config.php, authsources.php and metadata for an SP facing the test IdP behind a hosted IdP for the
    portal, signing with the broker's key (RSA-SHA256), PHP sessions in the temporary folder."""
    config, metadata, state = folder / "config", folder / "config" / "metadata", folder / "state"
    metadata.mkdir(parents=True)
    state.mkdir()
    idp_der = base64.b64encode(keys["idp"].certificate.public_bytes(serialization.Encoding.DER)).decode()
    rsa_sha256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    (config / "config.php").write_text(f"""<?php
$config = [
    'baseurlpath' => {_php(base)}, 'certdir' => {_php(str(folder) + "/")},
    'loggingdir' => {_php(str(state) + "/")}, 'datadir' => {_php(str(state) + "/")},
    'tempdir' => {_php(str(state))}, 'metadatadir' => {_php(str(metadata) + "/")},
    'secretsalt' => 'bench-salt-not-a-secret', 'auth.adminpassword' => 'bench-not-a-secret',
    'technicalcontact_email' => 'bench@example.org', 'timezone' => 'UTC',
    'enable.saml20-idp' => true, 'store.type' => 'phpsession',
    'logging.handler' => 'file', 'logging.logfile' => 'simplesamlphp.log',
    'logging.level' => SimpleSAML\\Logger::ERR, 'showerrors' => true,
    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
    'module.enable' => ['saml' => true, 'core' => true],
];
""")
    (config / "authsources.php").write_text(f"""<?php
$config = [
    'admin' => ['core:AdminPassword'],
    'default-sp' => ['saml:SP', 'entityID' => {_php(base + "sp")}, 'idp' => {_php(IDP_ENTITY)},
                     'signature.algorithm' => {_php(rsa_sha256)}],
];
""")
    (metadata / "saml20-idp-remote.php").write_text(f"""<?php
$metadata[{_php(IDP_ENTITY)}] = [
    'SingleSignOnService' => [['Binding' => 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect',
                               'Location' => 'https://login.microsoftonline.com/{TENANT}/saml2']],
    'certData' => {_php(idp_der)},
];
""")
    (metadata / "saml20-idp-hosted.php").write_text(f"""<?php
$metadata['__DYNAMIC:1__'] = [
    'host' => '__DEFAULT__', 'privatekey' => 'broker.key', 'certificate' => 'broker.crt',
    'auth' => 'default-sp', 'signature.algorithm' => {_php(rsa_sha256)},
];
""")
    (metadata / "saml20-sp-remote.php").write_text(f"""<?php
$metadata[{_php(PORTAL_ENTITY)}] = [
    'AssertionConsumerService' => {_php(PORTAL_ACS)},
    'NameIDFormat' => 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    'simplesaml.nameidattribute' => 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
];
""")
    return config


@contextmanager
def simplesamlphp(folder: Path, keys) -> Iterator[tuple[int, int, str]]:
    """PHP's built-in server on a free port serving SimpleSAMLphp's www/ with the generated config."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    config = ssp_config(folder, base, keys)
    log = (folder / "php.log").open("wb")
    process = subprocess.Popen(
        ["php", "-d", "opcache.enable_cli=1", "-d", f"session.save_path={folder / 'state'}",
         "-d", "display_errors=stderr", "-S", f"127.0.0.1:{port}", "-t", str(SSP_ROOT / "www")],
        env={**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(config)}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port, process.pid, base
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def prepare_ssp(port: int, base: str, keys, user, count: int) -> list[bytes]:
    """Logins started at the hosted IdP for the portal (each its own PHP session); for each, the POST of the
    test IdP's signed answer to the SP's ACS, with that session's cookie."""
    acs_path = "/module.php/saml/sp/saml2-acs.php/default-sp"
    start = "/saml2/idp/SSOService.php?" + urlencode(
        {"spentityid": PORTAL_ENTITY, "RelayState": "/dashboard"}
    )
    requests = []
    for _ in range(count):
        status, head, _ = exchange(port, f"GET {start} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        headers = [line.decode() for line in head.split(b"\r\n")[1:]]
        location = next(h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("location:"))
        cookie = "; ".join(h.split(":", 1)[1].split(";")[0].strip() for h in headers
                           if h.lower().startswith("set-cookie:"))  # fmt: skip
        query = parse_qs(urlsplit(location).query)
        request_id = etree.fromstring(decode_redirect_request(query["SAMLRequest"][0])).get("ID")
        spec = ResponseSpec(issuer=IDP_ENTITY, destination=base.rstrip("/") + acs_path, audience=base + "sp",
                            name_id=user.email, attributes=user_attributes(user), in_response_to=request_id,
                            now=datetime.now(UTC))  # fmt: skip
        body = urlencode({"SAMLResponse": encode(build_response(spec, keys["idp"])),
                          "RelayState": query.get("RelayState", [""])[0]}).encode()  # fmt: skip
        requests.append(
            (f"POST {acs_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}\r\n"
             f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            + body
        )  # fmt: skip
    return requests


# --- measuring --------------------------------------------------------------------------------------------------


def cpu_with_children() -> float:
    """CPU seconds of this process and its finished children (pysaml2 runs xmlsec1 as a child)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Peer:
    """A name, a way to prepare `n` logins and to run one, and where its CPU time is read: `clock` for a peer
    in this process (per login), or `pid` for a server process (over a block, divided by its logins)."""

    def __init__(self, name: str, prepare: Callable[[int], list], run: Callable[[object], bool], *,
                 clock: Callable[[], float] | None = None, pid: int | None = None):  # fmt: skip
        self.name, self.prepare, self.run, self.clock, self.pid = name, prepare, run, clock, pid
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def block(self, count: int) -> None:
        items = self.prepare(count)
        before = cpu_seconds([self.pid]) if self.pid else 0.0
        for item in items:
            start, cpu = time.perf_counter(), self.clock() if self.clock else 0.0
            ok = self.run(item)
            self.wall.append(time.perf_counter() - start)
            if self.clock:
                self.cpu.append(self.clock() - cpu)
            if not ok:
                raise RuntimeError(f"{self.name}: the step did not produce an auto-post page for the portal")
        if self.pid:
            self.cpu.append((cpu_seconds([self.pid]) - before) / len(items))


def wsgi_run(app) -> Callable[[object], bool]:
    def run(environ) -> bool:
        statuses: list[str] = []
        page = b"".join(app(environ, lambda status, *_: statuses.append(status)))
        return statuses[0].startswith("200") and b'name="SAMLResponse"' in page

    return run


def pysaml2_peer(folder: Path, keys, user) -> Peer | str:
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        return "pysaml2 + xmlsec1: skipped, the xmlsec1 binary is not installed (apt-get install xmlsec1)"
    try:
        from vs_xmlsec1 import pysaml2_login, pysaml2_proxy
    except ImportError as exc:
        return f"pysaml2 + xmlsec1: skipped, pysaml2 is not installed ({exc})"
    from common import signed_response

    logging.getLogger("saml2").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    sp, idp = pysaml2_proxy(folder, keys, xmlsec1)

    def prepare(count: int) -> list:
        items = []
        for n in range(count):
            request_id = f"_peer{os.getpid()}x{time.time_ns()}x{n}"
            items.append((base64.b64encode(signed_response(keys, user, request_id)).decode(), request_id))
        return items

    def run(item) -> bool:
        form = pysaml2_login(sp, idp, item[0], item[1], "/dashboard")
        return "SAMLResponse" in str(form["data"])

    return Peer("pysaml2 + xmlsec1 (in-process)", prepare, run, clock=cpu_with_children)


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=120, help="per peer (broker, SimpleSAMLphp)")
    parser.add_argument("--pysaml2-logins", type=int, default=30)
    args = parser.parse_args()
    skipped: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        app, keys, user = setup(folder)
        peers = [Peer("broker (in-process, WSGI)",
                      lambda n: [acs_environ(body, ip) for body, _, ip in prepare_logins(app, keys, user, n)],
                      wsgi_run(app), clock=time.thread_time)]  # fmt: skip
        config_file = folder / "broker-http.yaml"
        config_file.write_text(yaml.safe_dump({**config_dict(folder), "rate_limits": {"trusted_proxies": 1}}))
        port = free_port()
        stack = [gunicorn(folder, config_file, 1, port, threads=1)]
        server = stack[0].__enter__()
        try:
            workers = worker_pids(server.pid)
            peers.append(Peer("broker over HTTP (gunicorn 1×1)", lambda n: prepare_http(port, keys, user, n),
                              lambda raw: posts_saml_response(*exchange(port, raw)[::2]),
                              pid=workers[0]))  # fmt: skip
            pysaml2 = pysaml2_peer(folder, keys, user)
            if isinstance(pysaml2, str):
                skipped.append(pysaml2)
            else:
                peers.append(pysaml2)
            if shutil.which("php") is None or not (SSP_ROOT / "www").is_dir():
                skipped.append("SimpleSAMLphp: skipped, not installed "
                               "(apt-get install simplesamlphp php-xml php-mbstring)")  # fmt: skip
            else:
                ssp_folder = folder / "ssp"
                ssp_folder.mkdir()
                for name in ("broker.key", "broker.crt"):
                    shutil.copy(folder / name, ssp_folder / name)
                ssp = simplesamlphp(ssp_folder, keys)
                stack.append(ssp)
                ssp_port, ssp_pid, base = ssp.__enter__()
                version = next((line.split("'")[1] for line in (SSP_ROOT / "lib/SimpleSAML/Configuration.php")
                                .read_text().splitlines() if "const VERSION" in line), "?")  # fmt: skip
                peers.append(Peer(f"SimpleSAMLphp {version} (php -S, OPcache)",
                                  lambda n: prepare_ssp(ssp_port, base, keys, user, n),
                                  lambda raw: posts_saml_response(*exchange(ssp_port, raw)[::2]),
                                  pid=ssp_pid))  # fmt: skip

            warm = prepare_logins(app, keys, user, 40)
            inputs, cert, key_pair = floor_inputs(app, keys, warm, user)
            floor_calls = signxml_calls(cert, key_pair)
            for peer in peers:
                peer.block(3 if peer.name.startswith("pysaml2") else 20)
                peer.wall.clear()
                peer.cpu.clear()
            floor: list[float] = []
            for round_number in range(ROUNDS):
                order = peers if round_number % 2 == 0 else peers[::-1]
                floor.extend(measure_floor(floor_inputs(app, keys, warm, user)[0], floor_calls))
                for peer in order:
                    count = args.pysaml2_logins if peer.name.startswith("pysaml2") else args.logins
                    peer.block(max(1, count // ROUNDS))
            rsa = measure_rsa(keys, 200)
        finally:
            for context in reversed(stack):
                context.__exit__(None, None, None)
    floor_ms = median_ms(floor)
    load = os.getloadavg()
    print(f"machine: RSA-2048 sign + verify {median_ms(rsa):.3f} ms (CPU, median); load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} CPUs")  # fmt: skip
    print(f"floor (signxml verify + sign, in this process): median {floor_ms:.3f} ms CPU, n = {len(floor)}")
    print(f"{'peer':<40} {'n':>4} {'CPU/login':>10} {'ratio':>7} {'wall/login':>11} {'ratio':>7}")
    for peer in peers:
        wall, cpu = median_ms(peer.wall), median_ms(peer.cpu)
        print(f"{peer.name:<40} {len(peer.wall):>4} {cpu:7.2f} ms {cpu / floor_ms:6.2f}x "
              f"{wall:8.2f} ms {wall / floor_ms:6.2f}x")  # fmt: skip
    for line in skipped:
        print(line)
    print(
        "CPU: per login, median (in this process: the thread's, or with child processes for pysaml2; a server:"
    )
    print("its process's CPU over a block / the block's logins); wall: sequential logins, median, includes")
    print("waiting for a CPU on a busy machine and, over HTTP, a new loopback connection per login")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
