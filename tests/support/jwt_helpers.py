"""Credentials for the authentication tests, made fresh in each run.

* Operator mode (JWT): :class:`Operator` builds an operator, its system account and a JetStream
  account with the ``nats-jwt`` and ``nkeys`` packages, writes the ``nats-server`` config for a
  memory resolver (``resolver: MEMORY`` with the account JWTs in ``resolver_preload``) and users'
  creds files.
* Client certificates: :func:`issue_certificate` signs a certificate with the CA that
  ``jsapi_helpers.make_tls_files`` made (its ``ca.key``/``ca.pem``), valid or already expired,
  with the ``cryptography`` package.
* :func:`user_seed`: a fresh user nkey (seed and public key).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import nkeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from nats_jwt.nkeys_ext import create_account_pair, create_operator_pair, create_user_pair
from nats_jwt.v2.account_claims import AccountClaims
from nats_jwt.v2.operator_claims import OperatorClaims
from nats_jwt.v2.user_claims import UserClaims


def user_seed() -> tuple[str, str]:
    """A fresh user nkey: (seed, public key)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    public = nkeys.from_seed(seed.encode()).public_key.decode()
    return seed, public


def creds_text(user_jwt: str, seed: str) -> str:
    """A creds file as ``nsc`` writes it."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


@dataclass
class Operator:
    """An operator with a system account and one JetStream-enabled account (``APP``)."""

    name: str = "TEST_OP"
    _operator: nkeys.KeyPair = field(default_factory=create_operator_pair, repr=False)
    _system: nkeys.KeyPair = field(default_factory=create_account_pair, repr=False)
    _account: nkeys.KeyPair = field(default_factory=create_account_pair, repr=False)

    @property
    def account_public(self) -> str:
        return str(self._account.public_key.decode())

    @property
    def system_public(self) -> str:
        return str(self._system.public_key.decode())

    def server_config(self) -> str:
        """``nats-server`` config: operator mode with a memory resolver holding both accounts."""
        operator = self._operator
        claims = OperatorClaims(operator.public_key.decode(), self.name)
        claims.nats.system_account = self.system_public
        operator_jwt = claims.encode(operator)
        system_jwt = AccountClaims(self.system_public, "SYS").encode(operator)
        app = AccountClaims(self.account_public, "APP")
        app.nats.limits.disk_storage = -1
        app.nats.limits.memory_storage = -1
        app_jwt = app.encode(operator)
        return (
            f"operator: {operator_jwt}\n"
            f"system_account: {self.system_public}\n"
            "resolver: MEMORY\n"
            "resolver_preload: {\n"
            f"  {self.system_public}: {system_jwt}\n"
            f"  {self.account_public}: {app_jwt}\n"
            "}\n"
        )

    def user(self, name: str) -> tuple[str, str]:
        """A new user of ``APP``: (user JWT, seed)."""
        pair = create_user_pair()
        claims = UserClaims(pair.public_key.decode(), name)
        return claims.encode(self._account), pair.seed.decode()

    def write_creds(self, path: Path, name: str = "app-user") -> tuple[str, str]:
        """Write a creds file for a new user; returns its (JWT, seed)."""
        user_jwt, seed = self.user(name)
        path.write_text(creds_text(user_jwt, seed))
        return user_jwt, seed


def issue_certificate(
    ca_dir: Path,
    name: str,
    *,
    client: bool = True,
    expired: bool = False,
) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost signed by the CA in ``ca_dir`` (``ca.key`` and
    ``ca.pem`` from ``make_tls_files``), for a client (or a server), and its key: (cert, key).
    ``expired`` makes one whose validity ended an hour ago."""
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=2), now - dt.timedelta(hours=1))
        if expired
        else (
            now - dt.timedelta(minutes=5),
            now + dt.timedelta(days=2),
        )
    )
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = ca_dir / f"{name}.pem", ca_dir / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
