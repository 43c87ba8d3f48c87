"""A throwaway PKI for the TLS tests, made with `cryptography`: a CA, a server certificate for
127.0.0.1 and localhost, a client certificate, each key in PEM (the server's also encrypted),
and a second CA nobody trusts."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_PASSWORD = "s3cret-key-pass"


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate, trusted by both sides
    server_cert: Path
    server_key: Path
    server_key_encrypted: Path  # the same key under KEY_PASSWORD
    client_cert: Path
    client_key: Path
    rogue_ca: Path  # a CA no one trusts
    rogue_client_cert: Path  # a client certificate that CA signed
    rogue_client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool,
                 san: list[x509.GeneralName] | None = None,
                 usage: list[x509.ObjectIdentifier] | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False)
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> Path:
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8, encryption))
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("rmqstore test CA", ca_key, _name("rmqstore test CA"), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key, ca.subject, ca_key, ca=False,
                          san=[x509.DNSName("localhost"),
                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                          usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("test client", client_key, ca.subject, ca_key, ca=False,
                          usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _certificate("rogue CA", rogue_key, _name("rogue CA"), rogue_key, ca=True)
    rogue_client_key = ec.generate_private_key(ec.SECP256R1())
    rogue_client = _certificate("rogue client", rogue_client_key, rogue.subject, rogue_key,
                                ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    d = directory
    return Pki(
        ca=_write_cert(d / "ca.pem", ca),
        server_cert=_write_cert(d / "server.pem", server),
        server_key=_write_key(d / "server.key", server_key),
        server_key_encrypted=_write_key(d / "server-enc.key", server_key, KEY_PASSWORD),
        client_cert=_write_cert(d / "client.pem", client),
        client_key=_write_key(d / "client.key", client_key),
        rogue_ca=_write_cert(d / "rogue-ca.pem", rogue),
        rogue_client_cert=_write_cert(d / "rogue-client.pem", rogue_client),
        rogue_client_key=_write_key(d / "rogue-client.key", rogue_client_key),
    )
