"""The clients file (``PODIUM_CLIENTS_FILE``): outside callers' credentials, as ``podium clients`` writes them.

One JSON object, ``{"clients": [{"name", "scopes", "sha256", "created"}, ...]}``: each client's name (the owner
of the tasks it creates), its scopes (``ask``; ``admin`` acts on every task) and the SHA-256 of its token, never
the token itself. Tokens are 256-bit random strings, so a plain hash is enough to make a stolen file useless for
calling. Agents read the file at start and again whenever it changes (its modification time, size or inode),
in every mode; a file that does not exist yet holds no clients.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.agents.host.auth import DEFAULT_CLIENT, Caller
from podium.bus.errors import ConfigError
from podium.bus.owners import ASK, SCOPES

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TOKEN_PREFIX = "pdm_"


@dataclass(frozen=True)
class Client:
    name: str
    scopes: tuple[str, ...]
    sha256: str
    created: str = ""

    def dump(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scopes": list(self.scopes),
            "sha256": self.sha256,
            "created": self.created,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    """``name`` when it can name a client. Raises ``ConfigError`` saying what a name may hold."""
    if not _NAME.match(name):
        raise ConfigError(
            f"client name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if name == DEFAULT_CLIENT:
        raise ConfigError(f"client name {name!r} is PODIUM_A2A_TOKEN's client: choose another name")
    return name


class ClientsFile:
    """The clients in one file, re-read when it changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._clients: list[Client] = []

    def check(self) -> None:
        """Read the file now. Raises ``ConfigError`` naming the file and what is wrong with it."""
        self._refresh()

    def clients(self) -> list[Client]:
        """The clients in the file as it is now. Raises ``ConfigError`` for a file that cannot be read."""
        self._refresh()
        return list(self._clients)

    def authenticate(self, token: str) -> Caller | None:
        """The client whose token this is, or None. A file spoilt since the last read keeps the clients
        read before (logged), so a bad edit never opens or closes the door by itself."""
        try:
            self._refresh()
        except ConfigError as exc:
            logger.warning("%s; keeping the %d clients read before", exc, len(self._clients))
        digest = token_hash(token).encode()
        found = None
        for client in self._clients:  # every entry compared, in constant time each
            if hmac.compare_digest(digest, client.sha256.encode()):
                found = client
        return Caller(found.name, frozenset(found.scopes)) if found else None

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._clients = None, []
            return
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot read the clients file: {exc.strerror or exc}") from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        self._clients = _parse(self.path)
        self._stamp = stamp
        logger.info("clients file %s: %d clients", self.path, len(self._clients))

    def add(self, name: str, scopes: tuple[str, ...] = (ASK,)) -> str:
        """Add client ``name`` and return its new token (shown once; only its hash is kept). Raises
        ``ConfigError`` for a bad or taken name, a bad scope or a file that cannot be written."""
        check_name(name)
        bad = [s for s in scopes if s not in SCOPES]
        if bad:
            raise ConfigError(f"scope {bad[0]!r}: choose from {', '.join(SCOPES)}")
        clients = self.clients()
        if any(c.name == name for c in clients):
            raise ConfigError(
                f"{self.path}: client {name!r} exists already: remove it first to give it a new token"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._write([*clients, Client(name, tuple(dict.fromkeys(scopes)), token_hash(token), created)])
        return token

    def remove(self, name: str) -> None:
        """Remove client ``name``: its token stops working at once. Raises ``ConfigError`` when absent."""
        clients = self.clients()
        if not any(c.name == name for c in clients):
            raise ConfigError(f"{self.path}: no client {name!r} (see `podium clients list`)")
        self._write([c for c in clients if c.name != name])

    def _write(self, clients: list[Client]) -> None:
        """Replace the file atomically (agents never read half a file), readable by its owner only."""
        body = json.dumps({"clients": [c.dump() for c in clients]}, indent=2) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".clients-", dir=self.path.parent)
            with os.fdopen(fd, "w") as out:
                out.write(body)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot write the clients file: {exc.strerror or exc}") from exc
        self._stamp = None


def _parse(path: Path) -> list[Client]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a clients file (JSON from `podium clients add`): {exc}") from exc
    rows = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ConfigError(f'{path}: expected {{"clients": [...]}} as `podium clients add` writes it')
    clients: list[Client] = []
    for i, row in enumerate(rows):
        where = f"{path}: clients[{i}]"
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected an object")
        name, digest, scopes = row.get("name"), row.get("sha256"), row.get("scopes", [ASK])
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}.name: expected a client name, got {name!r}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ConfigError(f"{where}.sha256: expected a SHA-256 hex digest")
        if not isinstance(scopes, list) or any(s not in SCOPES for s in scopes):
            raise ConfigError(f"{where}.scopes: expected a list of {', '.join(SCOPES)}")
        clients.append(Client(name, tuple(scopes), digest, str(row.get("created", ""))))
    return clients
