"""The development C2PA signing certificate: a test CA and a signer it issued, made once.

C2PA validators refuse a self-signed signer, so development makes what production buys: a root
(CA) and an end-entity certificate for ES256 (P-256) whose key usage is digital signature and
whose extended key usages are the ones the C2PA trust model names (document signing, e-mail
protection), never "any". Both stay in the data dir; production points the settings at the
operator's own chain and key.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# id-kp-documentSigning (RFC 9336): what C2PA's trust lists expect of a claim signer.
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
_VALID_DAYS = 3650


@dataclass(frozen=True)
class SigningFiles:
    """Where the signer's chain (signer first, then its CA) and private key are, and the CA."""

    chain: Path
    key: Path
    root: Path | None  # the development CA, trusted when checking this server's own files


def development_files(data_dir: Path) -> SigningFiles:
    """The development CA and signer under `data_dir/c2pa`, made on first use."""
    folder = data_dir / "c2pa"
    if not folder.exists():
        # Made aside and renamed into place: two processes starting at once keep one pair.
        data_dir.mkdir(parents=True, exist_ok=True)
        aside = Path(tempfile.mkdtemp(dir=data_dir, prefix=".c2pa-"))
        _make(_files_in(aside))
        try:
            aside.rename(folder)
        except OSError:  # another process got there first
            shutil.rmtree(aside, ignore_errors=True)
    return _files_in(folder)


def _files_in(folder: Path) -> SigningFiles:
    return SigningFiles(folder / "signer-chain.pem", folder / "signer-key.pem", folder / "ca.pem")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vidgate development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make(files: SigningFiles) -> None:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("vidgate development C2PA CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("vidgate development C2PA signer"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    assert files.root is not None
    files.root.write_bytes(ca.public_bytes(pem))
    files.chain.write_bytes(signer.public_bytes(pem) + ca.public_bytes(pem))
    private = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Created private from the start: the key signs every result's provenance.
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private)


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
