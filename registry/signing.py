"""Signed Agent Cards: key pairs, signing and verification (JWS over the RFC 8785 canonical card).

Signing and verification are ``a2a.utils.signing``'s, so any A2A SDK can check a Podium signature. This module
adds what a deployment needs around them: key files (``KID.key.pem`` private, ``KID.pub.pem`` public; the
file name is the key id), a signer configured from ``PODIUM_SIGNING_KEY``, and a set of trusted public keys
(``PODIUM_TRUSTED_KEYS``) that says *why* a card was rejected: unsigned, unknown key id, or a bad signature.

Keys are EC P-256 (``ES256``, the default) or Ed25519 (``EdDSA``); the algorithm follows from the key, so a
signature can never be checked with an algorithm its key was not made for.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from a2a.types import AgentCard
from a2a.utils.signing import (
    InvalidSignaturesError,
    NoSignatureError,
    ProtectedHeader,
    create_agent_card_signer,
    create_signature_verifier,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.exceptions import InvalidKeyError

from podium.bus.keys import validate_name
from podium.registry.errors import InvalidSignature, SigningKeyError, UnknownKey, UnsignedCard

ALGORITHMS = ("ES256", "EdDSA")


class _QuietMissingInterfaces(logging.Filter):
    """a2a warns on every sign/verify of a card without interfaces; card files have none until run time."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("_canonicalize_agent_card" in msg and "missing or empty: supported_interfaces." in msg)


logging.getLogger("a2a.utils.proto_utils").addFilter(_QuietMissingInterfaces())
_PRIVATE_SUFFIXES = (".key.pem", ".private.pem", ".pem")
_PUBLIC_SUFFIXES = (".pub.pem", ".public.pem", ".pem")


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private: Path
    public: Path


def generate_keypair(out_dir: str | os.PathLike[str], kid: str, alg: str = "ES256") -> KeyPair:
    """Write a new key pair as ``OUT/KID.key.pem`` (mode 0600) and ``OUT/KID.pub.pem``.

    Raises ``SigningKeyError`` for an unknown algorithm, a bad key id, or when either file already exists.
    """
    try:
        validate_name("key id", kid)
    except ValueError as exc:
        raise SigningKeyError(str(exc)) from exc
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise SigningKeyError(f"unsupported algorithm {alg!r}: use one of {', '.join(ALGORITHMS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    private, public = out / f"{kid}.key.pem", out / f"{kid}.pub.pem"
    for path in (private, public):
        if path.exists():
            raise SigningKeyError(f"{path}: already exists; choose another --kid or directory")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    public.write_bytes(public_pem)
    return KeyPair(kid, private, public)


def _kid_from_path(path: Path, suffixes: Iterable[str]) -> str:
    name = path.name
    for suffix in suffixes:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _algorithm(key: Any, path: Path) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SigningKeyError(f"{path}: EC curve {key.curve.name} is not supported; use P-256")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise SigningKeyError(f"{path}: {type(key).__name__} is not supported; use an EC P-256 or Ed25519 key")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read key: {exc.strerror or exc}") from exc


class CardSigner:
    """Signs cards with one private key under one key id (``kid``)."""

    def __init__(self, private_pem: bytes, kid: str, *, source: str = "key") -> None:
        try:
            key = serialization.load_pem_private_key(private_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"{source}: not an unencrypted PEM private key") from exc
        self.alg = _algorithm(key, Path(source))
        self.kid = kid
        self._pem = private_pem

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], kid: str | None = None) -> CardSigner:
        """A signer for the PEM private key at ``path``; ``kid`` defaults to the file name (``NAME.key.pem``)."""
        p = Path(path)
        return cls(_read(p), kid or _kid_from_path(p, _PRIVATE_SUFFIXES), source=str(p))

    @classmethod
    def from_env(cls) -> CardSigner | None:
        """The signer named by ``PODIUM_SIGNING_KEY`` (and ``PODIUM_SIGNING_KID``), or ``None`` when unset."""
        path = os.environ.get("PODIUM_SIGNING_KEY")
        if not path:
            return None
        return cls.from_file(path, os.environ.get("PODIUM_SIGNING_KID") or None)

    def sign(self, card: AgentCard) -> AgentCard:
        """A signed copy of ``card``; an earlier signature by the same key id is replaced, others are kept."""
        signed = AgentCard()
        signed.CopyFrom(card)
        kept = [s for s in signed.signatures if _header(s.protected).get("kid") != self.kid]
        del signed.signatures[:]
        signed.signatures.extend(kept)
        header = cast(ProtectedHeader, {"kid": self.kid, "alg": self.alg, "typ": "JOSE"})
        return create_agent_card_signer(self._pem, header)(signed)


class TrustedKeys:
    """Public keys a registry trusts, by key id; :meth:`verify` says which one signed a card or why none did."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys: dict[str, tuple[bytes, str]] = {}
        for kid, pem in keys.items():
            try:
                key = serialization.load_pem_public_key(pem)
            except (ValueError, TypeError) as exc:
                raise SigningKeyError(f"trusted key {kid!r}: not a PEM public key") from exc
            self._keys[kid] = (pem, _algorithm(key, Path(kid)))
        if not self._keys:
            raise SigningKeyError("no trusted keys given: expected KID.pub.pem files")

    @classmethod
    def from_paths(cls, paths: Iterable[str | os.PathLike[str]]) -> TrustedKeys:
        """Trust each public key file, and every ``*.pem`` public key in each directory; the key id is the file name.

        Raises ``SigningKeyError`` for a missing path, a private key, or a file that is not a key.
        """
        found: dict[str, bytes] = {}
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                files = sorted(
                    p for p in path.glob("*.pem") if not p.name.endswith((".key.pem", ".private.pem"))
                )
            elif path.is_file():
                files = [path]
            else:
                raise SigningKeyError(f"{path}: no such trusted key file or directory")
            for file in files:
                pem = _read(file)
                if b"PRIVATE KEY" in pem:
                    raise SigningKeyError(
                        f"{file}: is a private key; trust the public key (KID.pub.pem) instead"
                    )
                kid = _kid_from_path(file, _PUBLIC_SUFFIXES)
                if kid in found:
                    raise SigningKeyError(f"{file}: key id {kid!r} is already trusted from another file")
                found[kid] = pem
        if not found:
            raise SigningKeyError(f"no public keys (KID.pub.pem) found in {', '.join(map(str, paths))}")
        return cls(found)

    @classmethod
    def from_env(cls, value: str | None = None) -> TrustedKeys | None:
        """Keys from ``PODIUM_TRUSTED_KEYS`` (directories or files, separated by ``os.pathsep``), or ``None``."""
        value = value if value is not None else os.environ.get("PODIUM_TRUSTED_KEYS", "")
        paths = [p for p in value.split(os.pathsep) if p.strip()]
        return cls.from_paths(paths) if paths else None

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def verify(self, card: AgentCard) -> str:
        """Return the key id of a trusted signature on ``card``.

        Raises ``UnsignedCard``, ``UnknownKey`` (no signature by a trusted key id) or ``InvalidSignature``.
        """
        trusted = ", ".join(self.kids)
        if not card.signatures:
            raise UnsignedCard(
                f"card {card.name!r} is unsigned; this registry accepts only cards signed by a trusted key ({trusted})"
            )
        kids = [_header(s.protected).get("kid") for s in card.signatures]
        ours = [k for k in kids if isinstance(k, str) and k in self._keys]
        if not ours:
            named = ", ".join(repr(k) for k in kids if k) or "no key id"
            raise UnknownKey(f"card {card.name!r} is signed by {named}, not by a trusted key ({trusted})")
        for kid in ours:
            pem, alg = self._keys[kid]

            def provider(k: str | None, _jku: str | None, kid: str = kid, pem: bytes = pem) -> bytes:
                if k != kid:
                    raise InvalidKeyError(f"not key {kid}")
                return pem

            try:
                create_signature_verifier(provider, [alg])(card)
            except (InvalidSignaturesError, NoSignatureError):
                continue
            return kid
        raise InvalidSignature(
            f"card {card.name!r}: signature by {', '.join(map(repr, ours))} does not verify: "
            "the card was changed after signing, or another key made the signature"
        )


def _header(protected: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return {}
    return header if isinstance(header, dict) else {}
