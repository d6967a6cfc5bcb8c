"""The blackboard store: one Redis hash per conversation (``keys.blackboard(context_id)``), one field per note.

Each note is JSON (value, author, times, version). Writes and appends run as one Lua script that checks
the per-note and per-board limits and writes only if they hold, so a refused write leaves the board
exactly as it was, even with many writers. One key per script, so it runs on Redis Cluster too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from podium.bus.keys import Keys, validate_name
from podium.bus.text import text
from podium.mcp_servers.errors import BoardLimitError

MAX_KEY = 200
MAX_AUTHOR = 128

# KEYS[1] board hash. ARGV: mode ('write'|'append'), field, value, author, now, max note bytes,
# max notes, max board bytes, ttl seconds. Returns {1, note json, notes, bytes} or {0, reason}.
_WRITE = """
local board, mode, field, value, author, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_note, max_notes, max_bytes, ttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local old = redis.call('HGET', board, field)
local note
if old then
  note = cjson.decode(old)
  if mode == 'append' then value = note.value .. value end
  note.value, note.author, note.updated_at, note.version = value, author, now, note.version + 1
else
  note = {value = value, author = author, created_at = now, updated_at = now, version = 1}
end
if string.len(value) > max_note then
  return {0, 'note ' .. field .. ' would be ' .. string.len(value) .. ' bytes; the limit is ' .. max_note}
end
local count = redis.call('HLEN', board)
if not old and count + 1 > max_notes then
  return {0, 'the board already holds ' .. count .. ' notes; the limit is ' .. max_notes}
end
local encoded = cjson.encode(note)
local total = 0
for _, f in ipairs(redis.call('HKEYS', board)) do total = total + redis.call('HSTRLEN', board, f) end
local after = total - (old and string.len(old) or 0) + string.len(encoded)
if after > max_bytes then
  return {0, 'the board would hold ' .. after .. ' bytes; the limit is ' .. max_bytes}
end
redis.call('HSET', board, field, encoded)
if ttl > 0 then redis.call('EXPIRE', board, ttl) end
if not old then count = count + 1 end
return {1, encoded, count, after}
"""


@dataclass(frozen=True, slots=True)
class Limits:
    note_bytes: int = 16 * 1024
    notes: int = 256
    board_bytes: int = 1024 * 1024
    ttl_s: int = 7 * 24 * 3600  # a board expires this long after its last write; 0 keeps it forever


@dataclass(frozen=True, slots=True)
class StoredNote:
    key: str
    value: str
    author: str
    created_at: str
    updated_at: str
    version: int

    @classmethod
    def decode(cls, key: str, raw: bytes | str) -> StoredNote:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            key=key,
            value=str(data["value"]),
            author=str(data["author"]),
            created_at=str(data["created_at"]),
            updated_at=str(data["updated_at"]),
            version=int(data["version"]),
        )


@dataclass(frozen=True, slots=True)
class Written:
    note: StoredNote
    notes: int
    bytes: int


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY or any(ord(c) < 32 for c in key):
        raise ValueError(f"note key must be 1-{MAX_KEY} printable characters")
    return key


class Board:
    """Notes per conversation, on the Redis client it is given (never one it creates)."""

    def __init__(self, redis: Any, keys: Keys, limits: Limits = Limits()) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = limits
        self._script = redis.register_script(_WRITE)

    def key(self, context_id: str) -> str:
        return self.keys.blackboard(validate_name("context_id", context_id))

    async def write(
        self, context_id: str, key: str, value: str, author: str, *, append: bool = False
    ) -> Written:
        """Set (or append to) one note. Raises ``BoardLimitError`` when a limit would be exceeded (the board
        is unchanged) and ``ValueError`` for a malformed context id, key or author."""
        check_key(key)
        if not author or len(author) > MAX_AUTHOR:
            raise ValueError(f"author must be 1-{MAX_AUTHOR} characters")
        now = datetime.now(UTC).isoformat(timespec="milliseconds")
        limits = self.limits
        result = await self._script(
            keys=[self.key(context_id)],
            args=[
                "append" if append else "write", key, value, author, now,
                limits.note_bytes, limits.notes, limits.board_bytes, limits.ttl_s,
            ],
        )  # fmt: skip
        if int(result[0]) != 1:
            raise BoardLimitError(f"refused: {text(result[1])}; the board is unchanged")
        return Written(note=StoredNote.decode(key, result[1]), notes=int(result[2]), bytes=int(result[3]))

    async def read(self, context_id: str, key: str) -> StoredNote | None:
        raw = await self.redis.hget(self.key(context_id), check_key(key))
        return None if raw is None else StoredNote.decode(key, raw)

    async def notes(self, context_id: str) -> list[StoredNote]:
        """Every note on the board, oldest first."""
        raw = await self.redis.hgetall(self.key(context_id))
        notes = [StoredNote.decode(text(k), v) for k, v in raw.items()]
        return sorted(notes, key=lambda n: (n.created_at, n.key))

    async def delete(self, context_id: str, key: str) -> bool:
        return bool(await self.redis.hdel(self.key(context_id), check_key(key)))
