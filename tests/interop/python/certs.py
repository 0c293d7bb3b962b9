"""Certificates for the TLS tests, made with the `cryptography` package: a
CA, a server certificate it signed, client certificates it signed, and the
client certificates a mutual-TLS server must refuse (signed by another CA,
expired, self-signed). All keys are P-256, as README.md's openssl commands
make them."""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as PEM files and bytes."""

    cert: Path
    key: Path

    @property
    def cert_pem(self):
        return self.cert.read_bytes()

    @property
    def key_pem(self):
        return self.key.read_bytes()


@dataclass(frozen=True)
class Pki:
    ca: Pair  # dataport-test-ca
    other_ca: Pair  # a CA the server does not trust
    server: Pair  # localhost and 127.0.0.1, signed by ca
    collector: Pair  # CN=collector, signed by ca (named in [[client]])
    stranger: Pair  # CN=stranger, signed by ca (named nowhere)
    foreign: Pair  # CN=collector, signed by other_ca
    expired: Pair  # CN=collector, signed by ca, expired yesterday
    self_signed: Pair  # CN=collector, signed by its own key

    def keys(self):
        """Every private key, for checks that none leaks."""
        return [p.key_pem for p in vars(self).values()]


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(directory, label, cert, key):
    pair = Pair(directory / f"{label}.pem", directory / f"{label}.key")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pair


class _Issuer:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


def _sign(subject_key, cn, issuer, *, ca=False, usage=None, sans=(), valid=None):
    """A certificate for subject_key named cn, signed by issuer (an _Issuer,
    or None for self-signed)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = valid or (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
    issuer_name = issuer.cert.subject if issuer else _name(cn)
    signing_key = issuer.key if issuer else subject_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _authority(directory, label, cn):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(key, cn, None, ca=True)
    return _Issuer(cert, key), _write(directory, label, cert, key)


def _leaf(directory, label, cn, issuer, usage, **kw):
    key = ec.generate_private_key(ec.SECP256R1())
    return _write(directory, label, _sign(key, cn, issuer, usage=usage, **kw), key)


def make(directory):
    """Every certificate the tests use, written to `directory`."""
    directory = Path(directory)
    ca, ca_pair = _authority(directory, "ca", "dataport-test-ca")
    other, other_pair = _authority(directory, "other-ca", "other-ca")
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    now = datetime.datetime.now(datetime.timezone.utc)
    return Pki(
        ca=ca_pair,
        other_ca=other_pair,
        server=_leaf(
            directory, "server", "localhost", ca, ExtendedKeyUsageOID.SERVER_AUTH,
            sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ),
        collector=_leaf(directory, "collector", "collector", ca, client),
        stranger=_leaf(directory, "stranger", "stranger", ca, client),
        foreign=_leaf(directory, "foreign", "collector", other, client),
        expired=_leaf(
            directory, "expired", "collector", ca, client,
            valid=(now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)),
        ),
        self_signed=_leaf(directory, "self-signed", "collector", None, client),
    )
