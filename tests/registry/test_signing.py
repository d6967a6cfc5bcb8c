"""Signed cards: key generation, signing through `podium card`, and a registry that trusts only some keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from podium.agents.cli import main
from podium.registry.cards import card_from_json, card_to_dict
from podium.registry.errors import InvalidSignature, SigningKeyError, UnknownKey, UnsignedCard
from podium.registry.signing import CardSigner, TrustedKeys, generate_keypair
from podium.registry.store import Registry
from tests.registry.helpers import podium_card, snapshot

pytestmark = pytest.mark.anyio


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    generate_keypair(tmp_path / "keys", "ops")
    generate_keypair(tmp_path / "keys", "edge", "EdDSA")
    generate_keypair(tmp_path / "other", "ops")  # same key id, different key
    return tmp_path


def signed(name: str, key: Path) -> object:
    return CardSigner.from_file(key).sign(podium_card(name))


@pytest.mark.parametrize("kid", ["ops", "edge"])
def test_sign_and_verify_both_algorithms(keydir: Path, kid: str) -> None:
    trusted = TrustedKeys.from_paths([keydir / "keys"])
    assert trusted.kids == ["edge", "ops"]
    card = signed("echo", keydir / "keys" / f"{kid}.key.pem")
    assert trusted.verify(card) == kid
    resigned = CardSigner.from_file(keydir / "keys" / f"{kid}.key.pem").sign(card)
    assert len(resigned.signatures) == 1  # re-signing with the same key id replaces its signature


def test_rejections_say_why(keydir: Path) -> None:
    trusted = TrustedKeys.from_paths([keydir / "keys" / "ops.pub.pem"])
    with pytest.raises(UnsignedCard, match=r"'echo' is unsigned; .* signed by a trusted key \(ops\)"):
        trusted.verify(podium_card("echo"))
    with pytest.raises(UnknownKey, match=r"signed by 'edge', not by a trusted key \(ops\)"):
        trusted.verify(signed("echo", keydir / "keys" / "edge.key.pem"))
    with pytest.raises(InvalidSignature, match="does not verify"):
        trusted.verify(signed("echo", keydir / "other" / "ops.key.pem"))  # right kid, wrong key
    tampered = signed("echo", keydir / "keys" / "ops.key.pem")
    tampered.skills[0].description = "Does something else entirely."
    with pytest.raises(InvalidSignature, match="changed after signing"):
        trusted.verify(tampered)


def test_key_files_are_checked(tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path, "k1")
    assert stat.S_IMODE(pair.private.stat().st_mode) == 0o600
    with pytest.raises(SigningKeyError, match="already exists"):
        generate_keypair(tmp_path, "k1")
    with pytest.raises(SigningKeyError, match="unsupported algorithm"):
        generate_keypair(tmp_path, "k2", "RS256")
    with pytest.raises(SigningKeyError, match="is a private key"):
        TrustedKeys.from_paths([pair.private])
    with pytest.raises(SigningKeyError, match="no such trusted key"):
        TrustedKeys.from_paths([tmp_path / "nope"])
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        CardSigner.from_file(pair.public)
    (tmp_path / "junk.pub.pem").write_text("not a key")
    with pytest.raises(SigningKeyError, match="'junk': not a PEM public key"):
        TrustedKeys.from_paths([tmp_path])
    assert TrustedKeys.from_env("") is None


def test_card_commands_keygen_sign_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", "keygen", "--out", str(tmp_path / "k"), "--kid", "team", "--alg", "EdDSA"]) == 0
    out = tmp_path / "echo.json"
    argv = ["card", "sign", "echo", "--key", str(tmp_path / "k" / "team.key.pem"), "--out", str(out)]
    assert main([*argv, "--interface", "JSONRPC=https://agents.example.com/echo"]) == 0
    data = json.loads(out.read_text())
    assert data["supportedInterfaces"][0]["url"] == "https://agents.example.com/echo" and data["signatures"]
    assert main(["card", "verify", str(out), "--trusted-keys", str(tmp_path / "k")]) == 0
    assert "signed by trusted key 'team'" in capsys.readouterr().out

    data["description"] = "tampered"
    out.write_text(json.dumps(data))
    assert main(["card", "verify", str(out), "--trusted-keys", str(tmp_path / "k")]) == 1
    assert "does not verify" in capsys.readouterr().err
    assert main(["card", "sign", "echo", "--key", str(tmp_path / "missing.pem")]) == 2  # a usage mistake
    assert "cannot read key" in capsys.readouterr().err
    assert main(["card", "check"]) == 0


async def test_registry_with_trusted_keys_accepts_only_good_signatures(redis, keys, keydir: Path) -> None:
    reg = Registry(redis, keys, trusted_keys=TrustedKeys.from_paths([keydir / "keys"]))
    good = signed("echo", keydir / "keys" / "ops.key.pem")
    await reg.register(good, "i1", ttl=30)
    [entry] = await reg.list()
    assert (entry.signed, entry.verified_by) == (True, "ops")

    before = await snapshot(redis, keys.namespace)
    tampered = signed("researcher", keydir / "keys" / "ops.key.pem")
    tampered.description = "A different agent."
    bad = {
        UnsignedCard: podium_card("analyst"),
        InvalidSignature: tampered,
        UnknownKey: CardSigner.from_file(keydir / "other" / "ops.key.pem", kid="stranger").sign(
            podium_card("writer")
        ),
    }
    for error, card in bad.items():
        with pytest.raises(error):
            await reg.register(card, "i1", ttl=30)
    assert await snapshot(redis, keys.namespace) == before


async def test_trusting_registry_hides_cards_others_wrote_unsigned(redis, keys, keydir: Path) -> None:
    await Registry(redis, keys).register(podium_card("echo"), "i1", ttl=30)  # a registry that checks nothing
    await Registry(redis, keys).register(signed("writer", keydir / "keys" / "edge.key.pem"), "i1", ttl=30)
    strict = Registry(redis, keys, trusted_keys=TrustedKeys.from_paths([keydir / "keys"]))
    assert [e.name for e in await strict.list()] == ["writer"]
    assert await strict.get("echo") is None
    assert [m.entry.name for m in await strict.find(text="echo")] == []


def test_signed_json_round_trips(keydir: Path) -> None:
    card = signed("echo", keydir / "keys" / "ops.key.pem")
    again = card_from_json(json.dumps(card_to_dict(card)))
    assert TrustedKeys.from_paths([keydir / "keys"]).verify(again) == "ops"


async def test_registry_from_env_trusts_podium_trusted_keys(redis, keys, keydir: Path, monkeypatch) -> None:
    monkeypatch.setenv("PODIUM_TRUSTED_KEYS", str(keydir / "keys"))
    assert Registry.from_env(redis, keys).trusted_keys.kids == ["edge", "ops"]
    monkeypatch.delenv("PODIUM_TRUSTED_KEYS")
    assert Registry.from_env(redis, keys).trusted_keys is None
