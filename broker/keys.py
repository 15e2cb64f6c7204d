"""Signing keys and certificates: load once, fingerprint, and generate (demo, `broker keygen`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from broker.errors import ConfigError


@dataclass(frozen=True)
class KeyPair:
    """A loaded private key and its certificate. Loading an RSA key costs ~40 ms, so this is built once."""

    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    cert_pem: str
    cert_b64: str  # base64 DER, as it goes into metadata and KeyInfo

    @property
    def sha1_fingerprint(self) -> str:
        return fingerprint(self.certificate, "sha1")

    @property
    def sha256_fingerprint(self) -> str:
        return fingerprint(self.certificate, "sha256")


def fingerprint(cert: x509.Certificate, algorithm: str = "sha256") -> str:
    """Colon-separated upper-case hex, the form LearnUpon's certificate fingerprint field takes."""
    digest = hashlib.new(algorithm, cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalise_fingerprint(value: str) -> str:
    """Fingerprints are pasted with or without colons, in any case."""
    return value.replace(":", "").replace(" ", "").lower()


def cert_body_b64(cert: x509.Certificate) -> str:
    import base64

    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def load_certificate_text(text: str) -> x509.Certificate:
    """A certificate from PEM, or from the bare base64 DER found in SAML metadata."""
    text = text.strip()
    if "-----BEGIN" not in text:
        body = "".join(text.split())
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        text = f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"
    return x509.load_pem_x509_certificate(text.encode("ascii"))


@lru_cache(maxsize=64)
def _load_key_pair_cached(key_path: str, cert_path: str, key_mtime: float, cert_mtime: float) -> KeyPair:
    key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{key_path}: only RSA keys are supported for SAML signing")
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    public = cert.public_key()
    if (
        not isinstance(public, rsa.RSAPublicKey)
        or public.public_numbers() != key.public_key().public_numbers()
    ):
        raise ConfigError(f"{cert_path}: certificate does not match the private key {key_path}")
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return KeyPair(key, cert, pem, cert_body_b64(cert))


def load_key_pair(key_path: str | Path, cert_path: str | Path) -> KeyPair:
    """Load (and cache) a key pair; a changed file is reloaded."""
    key_path, cert_path = str(key_path), str(cert_path)
    try:
        return _load_key_pair_cached(
            key_path, cert_path, os.stat(key_path).st_mtime, os.stat(cert_path).st_mtime
        )
    except OSError as exc:
        raise ConfigError(f"{exc.filename}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{key_path} / {cert_path}: not a PEM key and certificate: {exc}") from exc


def generate_key_pair(
    key_path: str | Path, cert_path: str | Path, common_name: str, *, years: int = 3, key_size: int = 2048
) -> KeyPair:
    """Write a new RSA key (mode 600) and a self-signed certificate valid for `years`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * years))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = Path(key_path), Path(cert_path)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_new_file(key_path, key_bytes, 0o600)
    write_new_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return load_key_pair(key_path, cert_path)


def write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a new file beside `path` (O_EXCL|O_NOFOLLOW, `mode` from its creation), then rename
    it over `path`: a replaced key is never readable with the old file's mode, and a symlink planted at
    `path` is replaced, never followed."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away; never adds any
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
