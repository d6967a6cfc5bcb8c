"""``docs``: BM25 full-text search over a document collection, as an MCP server.

Out of the box the collection is the Python language reference that ships with CPython
(``pydoc_data``), so it works offline. ``PODIUM_DOCS_DIRS`` (``os.pathsep``-separated) or
``podium mcp docs --docs-dir DIR`` adds folders of ``.txt``/``.md`` files. The index is built once,
in the server's lifespan. Documents are also resources: ``docs://{id}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import BaseModel, Field

from podium.mcp_servers import corpus
from podium.mcp_servers.bm25 import BM25Index, snippet
from podium.mcp_servers.errors import DocsPathError
from podium.mcp_servers.tooling import default_server, state, tool

logger = logging.getLogger(__name__)

MAX_QUERY = 1000
MAX_LIMIT = 50
MAX_PAGE = 20_000


@dataclass(frozen=True, slots=True)
class Library:
    """What the lifespan builds: the documents by id and their BM25 index (document n = ``order[n]``)."""

    docs: dict[str, corpus.Document]
    order: list[corpus.Document]
    index: BM25Index

    @classmethod
    def build(cls, documents: Sequence[corpus.Document]) -> Library:
        index = BM25Index()
        for doc in documents:
            index.add(doc.text, doc.title, doc.key_terms)
        return cls(docs=corpus.by_id(documents), order=list(documents), index=index)

    def get(self, doc_id: str) -> corpus.Document:
        """The document ``doc_id``; raises ``DocsPathError`` for ids that try to leave the collection and
        ``KeyError`` for ids that are simply not in it."""
        return self.docs[corpus.check_id(doc_id)]


class SearchHit(BaseModel):
    id: str = Field(description="document id, for read() or the docs://{id} resource")
    title: str
    snippet: str = Field(description="the passage that best matches the query")
    score: float = Field(description="BM25 relevance; higher is better, comparable within one search")


class SearchResult(BaseModel):
    hits: list[SearchHit] = Field(description="best matches first")
    total: int = Field(description="how many documents matched at least one query term")


class Page(BaseModel):
    id: str
    title: str
    text: str = Field(description="the characters [offset, offset + len(text)) of the document")
    offset: int
    total_chars: int
    next_offset: int | None = Field(description="offset of the next page, or null at the end")


def create_server(folders: Sequence[str] | None = None, *, builtin: bool = True) -> MCPServer[Library]:
    """A docs server over the Python reference (unless ``builtin`` is false) plus ``folders``;
    ``folders=None`` reads ``PODIUM_DOCS_DIRS`` when the server starts."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Library]) -> AsyncIterator[Library]:
        dirs = list(folders) if folders is not None else corpus.dirs_from_env()
        started = time.perf_counter()
        documents = await anyio.to_thread.run_sync(lambda: corpus.load_collection(dirs, builtin=builtin))
        library = Library.build(documents)
        logger.info("docs: indexed %d documents in %.2fs", len(library.order), time.perf_counter() - started)
        yield library

    server: MCPServer[Library] = MCPServer(
        "docs",
        title="Podium docs search",
        instructions="Search the document collection with search(), then read() a hit by id, page by page.",
        lifespan=lifespan,
    )

    @tool(server, read_only=True)
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY, description="words to look for")],
        ctx: Context[Library, Any],
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="most hits to return")] = 5,
    ) -> SearchResult:
        """Full-text search (BM25) over the document collection: the Python language reference and any
        configured folders. Returns the best-matching documents with a snippet each; pass a hit's id to
        read() for the full text."""
        library = state(ctx, Library)
        hits, total = library.index.search(query, limit)
        if total == 0 and not any(c.isalnum() for c in query):
            raise ToolError("query has no searchable words")
        found = [library.order[hit.doc] for hit in hits]
        return SearchResult(
            hits=[
                SearchHit(id=doc.id, title=doc.title, snippet=snippet(doc.text, query), score=hit.score)
                for doc, hit in zip(found, hits, strict=True)
            ],
            total=total,
        )

    @tool(server, read_only=True)
    async def read(
        id: Annotated[str, Field(min_length=1, max_length=1024, description="a document id from search()")],
        ctx: Context[Library, Any],
        offset: Annotated[int, Field(ge=0, description="first character to return")] = 0,
        length: Annotated[int, Field(ge=1, le=MAX_PAGE, description="most characters to return")] = 4000,
    ) -> Page:
        """Read one document by id, a page at a time: returns up to `length` characters from `offset` and
        the offset of the next page (null at the end)."""
        library = state(ctx, Library)
        try:
            doc = library.get(id)
        except DocsPathError as exc:
            raise ToolError(str(exc)) from exc
        except KeyError:
            raise ToolError(f"no document with id {id!r}; use search() to find ids") from None
        if offset > len(doc.text):
            raise ToolError(f"offset {offset} is past the end of {id!r} ({len(doc.text)} characters)")
        end = min(offset + length, len(doc.text))
        return Page(
            id=doc.id,
            title=doc.title,
            text=doc.text[offset:end],
            offset=offset,
            total_chars=len(doc.text),
            next_offset=end if end < len(doc.text) else None,
        )

    @server.resource("docs://{+id}", name="document", description="The full text of one document, by id.")
    async def document(id: str, ctx: Context[Library, Any]) -> str:
        try:
            return state(ctx, Library).get(id).text
        except (DocsPathError, KeyError):
            raise ResourceNotFoundError(f"no document with id {id!r}") from None

    return server


__getattr__ = default_server(create_server)
