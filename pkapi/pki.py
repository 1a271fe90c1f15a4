"""The cluster CA and the certificates it issues (EC P-256, pyca/cryptography).

Files under a PKI directory (mode 0600 for keys):

    ca.crt ca.key                the cluster CA (10 years)
    apiserver.crt apiserver.key  the HTTPS API's serving certificate (1 year),
                                 naming every address the API is reached at

Generation is idempotent: an existing CA is kept; an existing serving
certificate is kept while it was issued by that CA and names every wanted
address, else it is issued again (a control plane that gained an address
needs no manual step). issue() is pure (no I/O) for callers that keep the
PEM elsewhere (a kubeconfig's client certificate, a node's certificate).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVING_CERT = "apiserver.crt"
SERVING_KEY = "apiserver.key"

CA_DAYS = 3650
LEAF_DAYS = 365
CA_NAME = "pocketkube-ca"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str, orgs: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def new_ca(cn: str = CA_NAME, now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed CA: (cert PEM, key PEM)."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def issue(ca_cert_pem: bytes, ca_key_pem: bytes, cn: str, hosts: Iterable[str] = (), client: bool = False,
          orgs: Iterable[str] = (), now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A leaf certificate signed by the CA: (cert PEM, key PEM). `hosts`
    (IPs or DNS names) become subjectAltNames of a serving certificate;
    `client` makes a client certificate (CN = user, O = groups, as
    Kubernetes reads them)."""
    now = now or dt.datetime.now(dt.UTC)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    sans = _san(hosts)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def cert_hosts(cert_pem: bytes) -> set[str]:
    """The IPs and DNS names a certificate's subjectAltName holds."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def _signed_by(cert_pem: bytes, ca_cert_pem: bytes) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_cert_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - any failure means "not ours"
        return False
    return True


def _write(path: Path, data: bytes, private: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)  # atomic: a reader never sees half a key


def ensure_ca(directory: str | Path) -> tuple[bytes, bytes]:
    """The CA under `directory`, made on first use: (cert PEM, key PEM)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    crt, key = d / CA_CERT, d / CA_KEY
    if crt.exists() and key.exists():
        return crt.read_bytes(), key.read_bytes()
    cert_pem, key_pem = new_ca()
    _write(key, key_pem, private=True)
    _write(crt, cert_pem, private=False)
    return cert_pem, key_pem


def ensure_serving_cert(directory: str | Path, hosts: Iterable[str], cn: str = "pk-apiserver") -> tuple[Path, Path]:
    """The API's serving certificate under `directory`, naming every one of
    `hosts` (plus 127.0.0.1, localhost and kubernetes.default names), issued
    by the CA there (made first if needed). Returns (cert path, key path)."""
    d = Path(directory)
    ca_cert, ca_key = ensure_ca(d)
    want = {"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", *[h for h in hosts if h and h not in ("0.0.0.0", "::")]}
    crt, key = d / SERVING_CERT, d / SERVING_KEY
    if crt.exists() and key.exists():
        have = crt.read_bytes()
        if want <= cert_hosts(have) and _signed_by(have, ca_cert):
            return crt, key
    cert_pem, key_pem = issue(ca_cert, ca_key, cn, sorted(want))
    _write(key, key_pem, private=True)
    _write(crt, cert_pem, private=False)
    return crt, key


def ensure_client_cert(directory: str | Path, name: str, cn: str, orgs: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """A client certificate <name>.crt/<name>.key under `directory`, issued
    by the CA there once (CN = user, O = groups): (cert PEM, key PEM)."""
    d = Path(directory)
    ca_cert, ca_key = ensure_ca(d)
    crt, key = d / f"{name}.crt", d / f"{name}.key"
    if crt.exists() and key.exists() and _signed_by(crt.read_bytes(), ca_cert):
        return crt.read_bytes(), key.read_bytes()
    cert_pem, key_pem = issue(ca_cert, ca_key, cn, client=True, orgs=orgs)
    _write(key, key_pem, private=True)
    _write(crt, cert_pem, private=False)
    return cert_pem, key_pem
