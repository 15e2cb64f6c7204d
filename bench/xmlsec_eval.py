"""python-xmlsec (libxmlsec1 bindings) against signxml for the broker's two signature operations, in one run.

Not a dependency of the broker: run it in a separate virtual environment that has both (the evaluation in
bench/README.md used a fresh one, to see whether xmlsec's wheels install beside lxml's):

    python3 -m venv /tmp/xmlsec-eval/venv
    /tmp/xmlsec-eval/venv/bin/pip install --only-binary=:all: 'xmlsec>=1.3,<1.4' -e '.[test]'
    /tmp/xmlsec-eval/venv/bin/python bench/xmlsec_eval.py

Verify: an Entra-shaped signed assertion (the test IdP's, RSA-SHA256, exc-c14n) with the broker's
`verify_enveloped` (signxml, every structural check) and with xmlsec's `SignatureContext.verify` given the
trusted key (no checks around it: the raw library call). Sign: an outgoing assertion with the broker's
`sign_enveloped` and with an xmlsec template (the same algorithms and KeyInfo). CPU time of the thread, medians,
the two libraries in alternating blocks. Prints the libxml2 versions lxml and xmlsec were built with and run on.
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import PORTAL, bench_user, config_dict, make_keys, signed_response
from cryptography.hazmat.primitives import serialization
from lxml import etree

from broker.app import create_app
from broker.config import config_from_dict
from broker.saml.assertion import build_assertion
from broker.saml.xml import DS, SAML, parse_untrusted, qname
from broker.saml.xmldsig import sign_enveloped, verify_enveloped

BLOCK = 50


def main() -> None:
    try:
        import xmlsec
    except ImportError as exc:
        print(f"skipped: python-xmlsec is not importable here ({exc}); see this script's docstring")
        return
    print(f"lxml {etree.__version__}: libxml2 {etree.LIBXML_VERSION} (built with {etree.LIBXML_COMPILED_VERSION}); "
          f"xmlsec {xmlsec.__version__}: libxmlsec1 {xmlsec.get_libxmlsec_version()}, libxml2 "
          f"{xmlsec.get_libxml_version()} (built with {xmlsec.get_libxml_compiled_version()})")  # fmt: skip
    constants = xmlsec.constants
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = make_keys(folder)
        app = create_app(config_from_dict(config_dict(folder)))
        trust = app.extensions["broker"].portals[PORTAL].trust
        user = bench_user(3)
        documents = [signed_response(keys, user, None) for _ in range(4 * BLOCK)]
        idp_cert = keys["idp"].certificate
        verify_key = xmlsec.Key.from_memory(idp_cert.public_bytes(serialization.Encoding.PEM),
                                            constants.KeyDataFormatCertPem)  # fmt: skip
        sign_key = xmlsec.Key.from_memory((folder / "broker.key").read_bytes(), constants.KeyDataFormatPem)
        sign_key.load_cert_from_memory((folder / "broker.crt").read_bytes(), constants.KeyDataFormatCertPem)

        def assertions() -> list:
            return [parse_untrusted(d).find(qname(SAML, "Assertion")) for d in documents[:BLOCK]]

        def outgoing() -> list:
            return [build_assertion(trust, user.email, {"groups": ("A", "B", "C")}, now=datetime.now(UTC),
                                    authn_instant=None) for _ in range(BLOCK)]  # fmt: skip

        def xmlsec_verify(assertion) -> None:
            context = xmlsec.SignatureContext()
            context.register_id(assertion, "ID")
            context.key = verify_key
            context.verify(assertion.find(qname(DS, "Signature")))

        def xmlsec_sign(element):
            element = copy.deepcopy(element)  # as sign_enveloped returns a signed copy
            placeholder = element.find(qname(DS, "Signature"))
            template = xmlsec.template.create(element, constants.TransformExclC14N, constants.TransformRsaSha256,
                                              ns="ds")  # fmt: skip
            placeholder.getparent().replace(placeholder, template)
            reference = xmlsec.template.add_reference(template, constants.TransformSha256,
                                                      uri="#" + element.get("ID"))  # fmt: skip
            xmlsec.template.add_transform(reference, constants.TransformEnveloped)
            xmlsec.template.add_transform(reference, constants.TransformExclC14N)
            xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(template))
            context = xmlsec.SignatureContext()
            context.register_id(element, "ID")
            context.key = sign_key
            context.sign(template)
            return element

        # what xmlsec signs, the broker's verifier accepts (same algorithms, same shape)
        signed = etree.tostring(xmlsec_sign(outgoing()[0]))
        verify_enveloped(parse_untrusted(signed), [keys["broker"].certificate])
        cases = {
            "verify: broker (signxml + checks)": (assertions, lambda a: verify_enveloped(a, [idp_cert])),
            "verify: xmlsec (library call only)": (assertions, xmlsec_verify),
            "sign: broker (signxml)": (outgoing, lambda e: sign_enveloped(e, trust.key_pair)),
            "sign: xmlsec (template)": (outgoing, xmlsec_sign),
        }
        timings: dict[str, list[float]] = {name: [] for name in cases}
        for round_number in range(6):
            for name, (inputs, call) in cases.items() if round_number % 2 else reversed(cases.items()):
                for item in inputs():
                    start = time.thread_time()
                    call(item)
                    timings[name].append(time.thread_time() - start)
    for name, values in timings.items():
        print(f"  {name:<38} median {statistics.median(values) * 1000:6.3f} ms   (n = {len(values)})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
