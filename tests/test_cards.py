"""Every card in cards/ is a valid A2A 1.0 card, and bad cards fail with messages naming the file and field."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from a2a.client.card_resolver import parse_agent_card
from a2a.types import AgentCard, AgentInterface
from a2a.utils.proto_utils import validate_proto_required_fields
from google.protobuf.json_format import ParseDict

from podium.registry.cards import card_from_json, card_names, card_to_dict, cards_dir, load_card
from podium.registry.errors import CardError
from podium.registry.signing import CardSigner, TrustedKeys, generate_keypair

CARDS = Path(__file__).resolve().parent.parent / "cards"
EXPECTED = {"orchestrator", "researcher", "analyst", "writer", "reviewer", "echo"}


def interfaces(name: str) -> list[AgentInterface]:
    return [
        AgentInterface(protocol_binding="JSONRPC", url="http://127.0.0.1:8702/"),
        AgentInterface(protocol_binding="HTTP+JSON", url="http://127.0.0.1:8702/rest"),
        AgentInterface(protocol_binding="redis-streams", url=f"redis-streams://podium/{name}"),
    ]


def good_card() -> dict:
    return json.loads((CARDS / "echo.json").read_text())


def write(tmp_path: Path, name: str, data: dict | str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_every_agent_has_a_card() -> None:
    assert set(card_names(CARDS)) == EXPECTED
    assert cards_dir() == CARDS


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_file_is_a_valid_a2a_card(name: str) -> None:
    raw = json.loads((CARDS / f"{name}.json").read_text())
    ParseDict(raw, AgentCard(), ignore_unknown_fields=False)  # the strict protobuf parse on its own
    assert not {"url", "supportedInterfaces", "securityRequirements"} & raw.keys(), "run-time fields in file"

    card = load_card(name, interfaces=interfaces(name), security_token_required=True)
    validate_proto_required_fields(card)  # every REQUIRED field of A2A 1.0, once interfaces are filled
    assert card.name == name and card.capabilities.streaming
    assert [i.protocol_version for i in card.supported_interfaces] == ["1.0"] * 3
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert list(card.security_requirements[0].schemes) == ["bearer"]
    for skill in card.skills:
        assert (
            skill.description and skill.tags and skill.examples and skill.input_modes and skill.output_modes
        )
    # The JSON an A2A client gets parses back to the same card with the SDK's own client-side parser.
    assert parse_agent_card(card_to_dict(card)) == card


def test_echo_card_describes_the_plumbing_skill() -> None:
    card = load_card("echo")
    assert [s.id for s in card.skills] == ["echo"]
    assert "working" in card.skills[0].description and "artifact" in card.skills[0].description
    assert not card.supported_interfaces and not card.security_requirements


def test_security_requirement_only_when_a_token_is_configured() -> None:
    assert not load_card("researcher", interfaces=interfaces("researcher")).security_requirements


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["skills"][0].pop("id"), "skills[0].id: missing"),
        (lambda c: c.pop("skills"), "skills: at least one skill"),
        (lambda c: c["skills"].append(dict(c["skills"][0])), "skills[1].id: duplicate skill id 'echo'"),
        (
            lambda c: c.update(defaultInputModes=["plain text"]),
            "defaultInputModes[0]: 'plain text' is not a media type",
        ),
        (lambda c: c.update(defaultOutputModes=[]), "defaultOutputModes: at least one media type"),
        (lambda c: c["skills"][0].update(tags=[]), "skills[0].tags: at least one"),
        (lambda c: c.update(description=""), "description: missing"),
        (lambda c: c.update(version="  "), "version: missing"),
        (lambda c: c.pop("capabilities"), "capabilities: missing"),
        (lambda c: c["provider"].update(url="ftp://x"), "provider.url: 'ftp://x' is not an http(s) URL"),
        (
            lambda c: c["skills"][0].update(idd="x"),
            'skills[0]: Message type "lf.a2a.v1.AgentSkill" has no field named "idd"',
        ),
        (lambda c: c.update(colour="red"), 'has no field named "colour"'),
        (
            lambda c: c["capabilities"].update(streaming="yes"),
            "capabilities.streaming: Expected true or false",
        ),
        (lambda c: c["skills"][0].update(id=7), "skills.id: expected string"),
        (
            lambda c: c.update(securityRequirements=[{"schemes": {"oauth": {}}}]),
            "securityRequirements[0].schemes.oauth: not declared",
        ),
        (lambda c: c.update(name="other"), "name: 'other' does not match the file name 'echo'"),
    ],
)
def test_invalid_card_files_name_file_and_field(tmp_path: Path, mutate, message: str) -> None:
    data = good_card()
    mutate(data)
    path = write(tmp_path, "echo", data)
    with pytest.raises(CardError) as info:
        load_card(path)
    assert str(info.value).startswith(str(path) + ": ") or str(info.value).startswith("echo.json")
    assert message in str(info.value)


def test_malformed_json_and_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(CardError, match=r"echo\.json: not valid JSON"):
        load_card(write(tmp_path, "echo", '{"name": "echo",'))
    with pytest.raises(CardError, match="must be a JSON object, not list"):
        load_card(write(tmp_path, "echo", "[]"))
    with pytest.raises(CardError, match="no such card file"):
        load_card(tmp_path / "missing.json")


def test_cards_dir_from_env_and_unknown_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = good_card()
    data["name"] = "mine"
    write(tmp_path, "mine", data)
    monkeypatch.setenv("PODIUM_CARDS_DIR", str(tmp_path))
    assert load_card("mine").name == "mine"
    with pytest.raises(CardError, match=r"no card named 'echo' in .* \(available: mine\)"):
        load_card("echo")


def test_interfaces_are_checked(tmp_path: Path) -> None:
    with pytest.raises(CardError, match=r"supportedInterfaces\[0\]\.url: 'not a url' is not an http"):
        load_card("echo", interfaces=[AgentInterface(protocol_binding="JSONRPC", url="not a url")])
    with pytest.raises(CardError, match=r"supportedInterfaces\[0\]\.protocolBinding: missing"):
        load_card("echo", interfaces=[AgentInterface(url="http://h/")])


def test_card_from_json_for_cards_over_http() -> None:
    data = card_to_dict(load_card("echo", interfaces=interfaces("echo")))
    assert card_from_json(json.dumps(data), source="http://x").name == "echo"
    data.pop("supportedInterfaces")
    with pytest.raises(CardError, match="http://x: supportedInterfaces: at least one interface"):
        card_from_json(data, source="http://x")
    data["name"] = "Currency Agent"
    assert card_from_json(data, require_interfaces=False, key_name=False).name == "Currency Agent"
    with pytest.raises(CardError, match="name: invalid agent name"):
        card_from_json(data, require_interfaces=False)


def test_load_card_signs_the_completed_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pair = generate_keypair(tmp_path, "ops")
    trusted = TrustedKeys.from_paths([pair.public])
    card = load_card("echo", interfaces=interfaces("echo"), signer=CardSigner.from_file(pair.private))
    assert trusted.verify(card) == "ops"
    monkeypatch.setenv("PODIUM_SIGNING_KEY", str(pair.private))
    monkeypatch.setenv("PODIUM_SIGNING_KID", "ops")
    assert (
        trusted.verify(load_card("echo", interfaces=interfaces("echo"), security_token_required=True))
        == "ops"
    )


def test_stale_file_signatures_are_dropped_when_the_card_is_completed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pair = generate_keypair(tmp_path / "keys", "ops")
    signed = CardSigner.from_file(pair.private).sign(load_card("echo"))
    path = write(tmp_path, "echo", card_to_dict(signed))
    assert load_card(path).signatures  # unchanged card: the file's signature still covers it
    with caplog.at_level(logging.WARNING, logger="podium.registry.cards"):
        card = load_card(path, interfaces=interfaces("echo"))
    assert not card.signatures
    assert "PODIUM_SIGNING_KEY" in caplog.text
