"""``blackboard``: a shared scratchpad per conversation (A2A context id), stored in Redis, as an MCP server.

Agents working on one conversation leave each other notes: findings, numbers, drafts, decisions. Each
note records its author and times. Limits per note and per board are enforced atomically; a write over
a limit is refused with a tool error and the board keeps what it had. The Redis client comes from
``bus.connection.connect()`` (``REDIS_URL``; the embedded bus when unset), keys live under
``PODIUM_NAMESPACE``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from podium.bus.connection import connect
from podium.bus.keys import Keys
from podium.mcp_servers.board import MAX_AUTHOR, MAX_KEY, Board, Limits, StoredNote
from podium.mcp_servers.errors import BoardLimitError
from podium.mcp_servers.tooling import default_server, state, tool

PREVIEW = 200

ContextId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description="the conversation (A2A context id) whose board to use",
    ),
]
NoteKey = Annotated[
    str, Field(min_length=1, max_length=MAX_KEY, description="the note's name, e.g. 'findings'")
]
# A first bound before Redis sees the value; the store enforces the configured byte limits exactly.
NoteValue = Annotated[str, Field(max_length=Limits().note_bytes, description="the note's text")]
Author = Annotated[str, Field(min_length=1, max_length=MAX_AUTHOR, description="who writes: your agent name")]


class Note(BaseModel):
    key: str
    value: str
    author: str = Field(description="who wrote the note last")
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str = Field(description="ISO 8601, UTC")
    version: int = Field(description="1 on creation, +1 on every write or append")

    @classmethod
    def of(cls, note: StoredNote) -> Note:
        return cls(
            key=note.key,
            value=note.value,
            author=note.author,
            created_at=note.created_at,
            updated_at=note.updated_at,
            version=note.version,
        )


class Written(BaseModel):
    note: Note
    board_notes: int = Field(description="notes on the board after this write")
    board_bytes: int = Field(description="bytes the board holds after this write")


class NoteSummary(BaseModel):
    key: str
    author: str
    updated_at: str
    version: int
    chars: int
    preview: str = Field(description=f"the first {PREVIEW} characters of the value")


class Listing(BaseModel):
    context_id: str
    notes: list[NoteSummary] = Field(description="oldest first")
    count: int


class Deleted(BaseModel):
    key: str
    deleted: bool = Field(description="false if there was no such note")


def create_server(
    url: str | None = None,
    namespace: str | None = None,
    limits: Limits = Limits(),
    *,
    redis: Any = None,
) -> MCPServer[Board]:
    """A blackboard server on Redis at ``url`` (default ``REDIS_URL``, else the embedded bus), keys under
    ``namespace`` (default ``PODIUM_NAMESPACE``). Given ``redis``, an async client the caller owns, the
    server uses it instead of connecting (an agent mounting the server in-process shares its client)."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Board]) -> AsyncIterator[Board]:
        keys = Keys(namespace) if namespace else Keys.from_env()
        if redis is not None:
            yield Board(redis, keys, limits)
            return
        client = connect(url)
        try:
            yield Board(client, keys, limits)
        finally:
            await client.aclose()

    server: MCPServer[Board] = MCPServer(
        "blackboard",
        title="Podium blackboard",
        instructions="Shared notes per conversation: write/append what others should know, read/list what they left.",
        lifespan=lifespan,
    )

    async def _write(
        ctx: Context[Board, Any], context_id: str, key: str, value: str, author: str, append: bool
    ) -> Written:
        try:
            written = await state(ctx, Board).write(context_id, key, value, author, append=append)
        except (BoardLimitError, ValueError) as exc:
            raise ToolError(str(exc)) from exc
        return Written(note=Note.of(written.note), board_notes=written.notes, board_bytes=written.bytes)

    @tool(server, idempotent=True)
    async def write(
        context_id: ContextId,
        key: NoteKey,
        value: NoteValue,
        author: Author,
        ctx: Context[Board, Any],
    ) -> Written:
        """Create or replace the note `key` on the conversation's board. Refused (board unchanged) if the
        note would exceed 16 KiB or the board 256 notes / 1 MiB."""
        return await _write(ctx, context_id, key, value, author, append=False)

    @tool(server)
    async def append(
        context_id: ContextId,
        key: NoteKey,
        value: NoteValue,
        author: Author,
        ctx: Context[Board, Any],
    ) -> Written:
        """Append text to the note `key` (creating it if missing), e.g. to add a finding to a running
        list; include your own separator or newline. Refused (board unchanged) over the size limits."""
        return await _write(ctx, context_id, key, value, author, append=True)

    @tool(server, read_only=True)
    async def read(context_id: ContextId, key: NoteKey, ctx: Context[Board, Any]) -> Note:
        """Read one note from the conversation's board, with its author and times."""
        note = await state(ctx, Board).read(context_id, key)
        if note is None:
            raise ToolError(
                f"no note {key!r} on the board for context {context_id!r}; list() shows what exists"
            )
        return Note.of(note)

    @tool(server, name="list", read_only=True)
    async def list_notes(context_id: ContextId, ctx: Context[Board, Any]) -> Listing:
        """List the notes on the conversation's board (key, author, time, size and a preview), oldest first."""
        notes = await state(ctx, Board).notes(context_id)
        return Listing(
            context_id=context_id,
            notes=[
                NoteSummary(
                    key=n.key,
                    author=n.author,
                    updated_at=n.updated_at,
                    version=n.version,
                    chars=len(n.value),
                    preview=n.value[:PREVIEW],
                )
                for n in notes
            ],
            count=len(notes),
        )

    @tool(server, destructive=True, idempotent=True)
    async def delete(context_id: ContextId, key: NoteKey, ctx: Context[Board, Any]) -> Deleted:
        """Delete one note from the conversation's board."""
        return Deleted(key=key, deleted=await state(ctx, Board).delete(context_id, key))

    return server


__getattr__ = default_server(create_server)
