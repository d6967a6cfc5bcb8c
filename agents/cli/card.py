"""``podium card``: check cards, generate signing keys, sign cards.

podium card keygen --out DIR [--kid NAME] [--alg ES256|EdDSA]
podium card sign cards/x.json --key DIR/NAME.key.pem [--kid NAME] [--out FILE]
podium card verify FILE --trusted-keys DIR
podium card check [NAME|FILE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from a2a.utils.constants import PROTOCOL_VERSION_CURRENT

from podium.registry.cards import (
    card_from_json,
    card_names,
    card_path,
    card_to_dict,
    cards_dir,
    load_card,
    validate_card,
)
from podium.registry.errors import CardError, RegistryError, SigningKeyError
from podium.registry.signing import ALGORITHMS, CardSigner, TrustedKeys, generate_keypair


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    keygen = sub.add_parser("keygen", help="generate a signing key pair (KID.key.pem, KID.pub.pem)")
    keygen.add_argument("--out", required=True, help="directory to write the key files to")
    keygen.add_argument("--kid", default="podium", help="key id, also the file name (default 'podium')")
    keygen.add_argument(
        "--alg", choices=ALGORITHMS, default="ES256", help="ES256 (EC P-256, default) or EdDSA"
    )

    sign = sub.add_parser("sign", help="sign a card file (JWS, a2a.utils.signing)")
    sign.add_argument("card", help="card file or name")
    sign.add_argument("--key", required=True, help="PEM private key (from `podium card keygen`)")
    sign.add_argument("--kid", default=None, help="key id (default: the key file's name)")
    sign.add_argument(
        "--out", default=None, help="write here ('-' for stdout; default: replace the card file)"
    )
    sign.add_argument(
        "--interface",
        action="append",
        default=[],
        metavar="BINDING=URL",
        help="set supportedInterfaces before signing (repeatable), e.g. JSONRPC=https://agents.example.com/a2a",
    )

    verify = sub.add_parser("verify", help="check a card's signature against trusted public keys")
    verify.add_argument("card", help="card file or name")
    verify.add_argument(
        "--trusted-keys",
        default=os.environ.get("PODIUM_TRUSTED_KEYS") or None,
        help="directory or file(s) of public keys (default $PODIUM_TRUSTED_KEYS)",
    )

    check = sub.add_parser("check", help="validate card files (default: every card in the cards directory)")
    check.add_argument("cards", nargs="*", help="card files or names")


def run(args: argparse.Namespace) -> int:
    try:
        return {"keygen": _keygen, "sign": _sign, "verify": _verify, "check": _check}[args.card_command](args)
    except (CardError, SigningKeyError) as exc:  # a card or key the user named cannot be used
        print(f"podium card: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path to write to that cannot be written
        print(f"podium card: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:  # a signature that does not verify
        print(f"podium card: {exc}", file=sys.stderr)
        return 1


def _keygen(args: argparse.Namespace) -> int:
    pair = generate_keypair(args.out, args.kid, args.alg)
    print(f"private key: {pair.private}  (keep it secret; PODIUM_SIGNING_KEY={pair.private})")
    print(f"public key:  {pair.public}  (give it to registries: --trusted-keys {pair.public.parent})")
    return 0


def _sign(args: argparse.Namespace) -> int:
    path = card_path(args.card)
    card = card_from_json(path.read_bytes(), source=str(path), require_interfaces=False, key_name=False)
    if args.interface:
        del card.supported_interfaces[:]
        for spec in args.interface:
            binding, sep, url = spec.partition("=")
            if not sep or not binding or not url:
                print(f"podium card sign: --interface {spec!r}: expected BINDING=URL", file=sys.stderr)
                return 2
            card.supported_interfaces.add(
                protocol_binding=binding, url=url, protocol_version=PROTOCOL_VERSION_CURRENT
            )
        validate_card(card, source=str(path), require_interfaces=True, key_name=False)
    signed = CardSigner.from_file(args.key, args.kid).sign(card)
    text = json.dumps(card_to_dict(signed), indent=2, ensure_ascii=False) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out) if args.out else path
    out.write_text(text)
    print(f"signed {path} -> {out}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    if not args.trusted_keys:
        print("podium card verify: give --trusted-keys DIR or set PODIUM_TRUSTED_KEYS", file=sys.stderr)
        return 2
    trusted = TrustedKeys.from_env(args.trusted_keys)
    assert trusted is not None
    path = card_path(args.card)
    card = card_from_json(path.read_bytes(), source=str(path), require_interfaces=False, key_name=False)
    print(f"{path}: signed by trusted key {trusted.verify(card)!r}")
    return 0


def _check(args: argparse.Namespace) -> int:
    names = args.cards or card_names()
    if not names:
        where = cards_dir()
        hint = (
            "set PODIUM_CARDS_DIR to a folder of cards"
            if os.environ.get("PODIUM_CARDS_DIR")
            else "name card files"
        )
        print(f"podium card check: no cards found in {where}; {hint}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        try:
            card = load_card(name)
        except RegistryError as exc:
            print(f"FAIL {exc}")
            failed += 1
        else:
            print(f"ok   {card.name}: {', '.join(s.id for s in card.skills)}")
    return 1 if failed else 0
