"""The docs server in-memory: known-answer search quality, paging, resources, folders, and refusals."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client, MCPError

from podium.mcp_servers import corpus, docs
from podium.mcp_servers.errors import DocsPathError

pytestmark = pytest.mark.anyio

# query -> the topic a reader would want first
KNOWN_ANSWERS = {
    "with statement context manager": "with",
    "yield expression generator": "yield",
    "try except finally exception handling": "try",
    "lambda anonymous function": "lambda",
    "global nonlocal variable scope": "nonlocal",
    "async await coroutine": "async",
    "operator precedence": "operator-summary",
    "context manager __enter__ __exit__": "with",
    "import module package": "import",
    "for loop iterate over a sequence": "for",
    "class definition inheritance": "class",
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[Client]:
    async with Client(docs.create_server(folders=[])) as c:
        yield c


async def search(client: Client, query: str, limit: int = 5) -> dict:
    result = await client.call_tool("search", {"query": query, "limit": limit})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def test_tools_have_input_and_output_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search", "read"}
    assert tools["search"].input_schema["required"] == ["query"]
    assert tools["search"].input_schema["properties"]["limit"]["default"] == 5
    assert set(tools["search"].output_schema["properties"]) == {"hits", "total"}
    assert set(tools["read"].input_schema["properties"]) == {"id", "offset", "length"}
    assert "next_offset" in tools["read"].output_schema["properties"]
    assert tools["search"].description.startswith("Full-text search (BM25)")
    assert tools["read"].annotations.read_only_hint


@pytest.mark.parametrize(("query", "expected"), sorted(KNOWN_ANSWERS.items()))
async def test_known_answer_is_the_top_hit(client: Client, query: str, expected: str) -> None:
    found = await search(client, query)
    assert found["hits"][0]["id"] == expected, [h["id"] for h in found["hits"]]


async def test_hits_are_ranked_with_titles_and_snippets(client: Client) -> None:
    found = await search(client, "with statement context manager", limit=3)
    hits = found["hits"]
    assert len(hits) == 3 and found["total"] >= 3
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert hits[0]["title"] == 'The "with" statement'
    assert "context manager" in hits[0]["snippet"]


async def test_no_match_is_an_empty_result(client: Client) -> None:
    assert await search(client, "qwertyuiopasdf") == {"hits": [], "total": 0}
    nothing = await client.call_tool("search", {"query": "?!"})
    assert nothing.is_error and "no searchable words" in nothing.content[0].text


async def test_read_pages_through_a_document(client: Client) -> None:
    first = (await client.call_tool("read", {"id": "with", "length": 1000})).structured_content
    assert first["offset"] == 0 and first["next_offset"] == 1000 and len(first["text"]) == 1000
    text, offset = first["text"], first["next_offset"]
    while offset is not None:
        page = (
            await client.call_tool("read", {"id": "with", "offset": offset, "length": 1000})
        ).structured_content
        text += page["text"]
        offset = page["next_offset"]
    assert len(text) == first["total_chars"]
    resource = await client.read_resource("docs://with")
    assert resource.contents[0].text == text


async def test_unknown_and_escaping_ids_are_refused(client: Client) -> None:
    for doc_id, message in [
        ("no-such-topic", "no document with id"),
        ("../etc/passwd", "escapes its folder"),
        ("docs/../../secret.md", "escapes its folder"),
        ("/etc/passwd", "is absolute"),
        ("C:/Windows/win.ini", "is absolute"),
        ("a\\..\\b", "backslash"),
    ]:
        result = await client.call_tool("read", {"id": doc_id})
        assert result.is_error and message in result.content[0].text, (doc_id, result.content)
    with pytest.raises(MCPError):
        await client.read_resource("docs://no-such-topic")
    with pytest.raises(MCPError):
        await client.read_resource("docs://../etc/passwd")


async def test_offset_past_the_end_is_refused(client: Client) -> None:
    result = await client.call_tool("read", {"id": "with", "offset": 10**7})
    assert result.is_error and "past the end" in result.content[0].text


@pytest.mark.parametrize(
    ("tool", "arguments", "argument"),
    [
        ("search", {}, "query"),
        ("search", {"query": 42}, "query"),
        ("search", {"query": "x" * 1001}, "query"),
        ("search", {"query": ""}, "query"),
        ("search", {"query": "with", "limit": "many"}, "limit"),
        ("search", {"query": "with", "limit": 0}, "limit"),
        ("search", {"query": "with", "limit": 10_000}, "limit"),
        ("read", {}, "id"),
        ("read", {"id": "with", "offset": -1}, "offset"),
        ("read", {"id": "with", "length": 10**6}, "length"),
    ],
)
async def test_bad_arguments_are_tool_errors_naming_the_argument(
    client: Client, tool: str, arguments: dict, argument: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert f"\n{argument}\n" in result.content[0].text


def make_folder(root: Path) -> Path:
    notes = root / "team-notes"
    (notes / "guides").mkdir(parents=True)
    (notes / "guides" / "deploy.md").write_text(
        "# Deploying Podium\n\nRun the flux capacitor before deploying.\n"
    )
    (notes / "faq.txt").write_text("Podium FAQ\n\nThe bus is Redis Streams.\n")
    (notes / "image.png").write_bytes(b"\x89PNG")
    secret = root / "secret.md"
    secret.write_text("# Secret\n\nflux capacitor launch codes\n")
    os.symlink(secret, notes / "leak.md")
    return notes


async def test_folders_are_indexed_with_relative_ids_and_symlinks_out_refused(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    async with Client(docs.create_server(folders=[str(folder)], builtin=False)) as client:
        found = await search(client, "flux capacitor")
        assert [h["id"] for h in found["hits"]] == ["team-notes/guides/deploy.md"]
        assert found["hits"][0]["title"] == "Deploying Podium"
        page = (await client.call_tool("read", {"id": "team-notes/faq.txt"})).structured_content
        assert page["title"] == "Podium FAQ" and "Redis Streams" in page["text"]
        for doc_id in ("team-notes/leak.md", "team-notes/../secret.md", "team-notes/image.png"):
            assert (await client.call_tool("read", {"id": doc_id})).is_error
        uri = "docs://team-notes/guides/deploy.md"
        assert "flux capacitor" in (await client.read_resource(uri)).contents[0].text


async def test_folders_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_folder(tmp_path)
    monkeypatch.setenv(corpus.ENV_DIRS, os.pathsep.join([str(folder), ""]))
    async with Client(docs.create_server()) as client:
        assert (await search(client, "flux capacitor"))["hits"][0]["id"] == "team-notes/guides/deploy.md"
        assert (await search(client, "with statement"))["hits"][0]["id"] == "with"


def test_a_missing_folder_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(DocsPathError, match="does not exist"):
        corpus.load_collection([str(tmp_path / "nope")])
    (tmp_path / "file.md").write_text("x")
    with pytest.raises(DocsPathError, match="not a directory"):
        corpus.load_collection([str(tmp_path / "file.md")])


def test_same_named_folders_get_distinct_ids(tmp_path: Path) -> None:
    for parent in ("a", "b"):
        (tmp_path / parent / "notes").mkdir(parents=True)
        (tmp_path / parent / "notes" / "x.md").write_text(f"from {parent}")
    found = corpus.load_collection(
        [str(tmp_path / "a" / "notes"), str(tmp_path / "b" / "notes")], builtin=False
    )
    assert [d.id for d in found] == ["notes/x.md", "notes-2/x.md"]
