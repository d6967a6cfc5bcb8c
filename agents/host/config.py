"""Per-agent configuration: ``agents/config/<agent>.json`` (or ``$PODIUM_AGENT_CONFIG_DIR/<agent>.json``).

Today it says which MCP servers an agent mounts, each by stdio command, Streamable HTTP URL, or
in-process server name, with the tools it may call and a timeout::

    {"mcp": [
        {"name": "docs", "command": ["podium", "mcp", "docs", "--transport", "stdio"], "allow": ["search", "read"]},
        {"name": "calc", "url": "http://127.0.0.1:8711/mcp", "token_env": "PODIUM_MCP_TOKEN", "timeout_s": 20},
        {"name": "blackboard", "in_process": "blackboard"}
    ]}

A bad file is rejected when loaded, with the file and field named. ``PODIUM_MCP_<NAME>_URL`` (e.g.
``PODIUM_MCP_CALC_URL``) points a server at a shared HTTP deployment without editing the file.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from podium.agents.llm.settings import LlmConfig

# The built-in agents' configs, packaged with podium.agents.
CONFIG_DIR = Path(str(resources.files("podium.agents"))) / "config"
CONFIG_DIR_ENV = "PODIUM_AGENT_CONFIG_DIR"
DEFAULT_TOKEN_ENV = "PODIUM_MCP_TOKEN"


class AgentConfigError(ValueError):
    """An agent's configuration file is missing a required part, malformed, or names an unknown field."""

    default = "invalid agent configuration"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default)


class McpServerConfig(BaseModel):
    """One MCP server an agent mounts: exactly one of ``command``, ``url`` or ``in_process``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="prefix of the agent's tool names")
    command: list[str] | None = Field(default=None, min_length=1, description="stdio: the command to spawn")
    url: str | None = Field(
        default=None, description="Streamable HTTP endpoint, e.g. http://127.0.0.1:8711/mcp"
    )
    in_process: str | None = Field(
        default=None, description="a server of mcp_servers run inside this process"
    )
    token_env: str | None = Field(default=None, description="env var with the bearer token (HTTP)")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for a stdio server")
    allow: list[str] | None = Field(default=None, description="tools the agent may call; null means all")
    timeout_s: float = Field(default=20.0, gt=0, le=600, description="per call, and for connecting")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return url

    @field_validator("in_process")
    @classmethod
    def _known_server(cls, name: str | None) -> str | None:
        from podium.mcp_servers import SERVERS

        if name is not None and name not in SERVERS:
            raise ValueError(f"unknown server {name!r}; choose from {', '.join(sorted(SERVERS))}")
        return name

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        given = [k for k in ("command", "url", "in_process") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of command, url or in_process (got {', '.join(given) or 'none'})"
            )
        if self.token_env is not None and self.url is None:
            raise ValueError("token_env applies only to a url server")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http" if self.url else "in_process"

    def with_env_overrides(self, environ: dict[str, str] | os._Environ[str] = os.environ) -> McpServerConfig:
        """This server, pointed at ``PODIUM_MCP_<NAME>_URL`` when that is set."""
        url = environ.get(f"PODIUM_MCP_{self.name.upper()}_URL")
        if not url:
            return self
        data = self.model_dump() | {"url": url, "command": None, "in_process": None, "env": {}}
        data["token_env"] = self.token_env or DEFAULT_TOKEN_ENV
        return McpServerConfig.model_validate(data)


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mcp: list[McpServerConfig] = Field(default_factory=list, description="MCP servers the agent mounts")
    executor: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="module with build(ctx) -> AgentExecutor, for agents Podium does not ship",
    )
    orchestrator: dict[str, Any] | None = Field(default=None, description="the orchestrator's settings")
    llm: LlmConfig | None = Field(
        default=None, description="the agent's model: provider, model, maxTokens, thinking, price"
    )

    @field_validator("mcp")
    @classmethod
    def _unique_names(cls, servers: list[McpServerConfig]) -> list[McpServerConfig]:
        names = [s.name for s in servers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"server names must be unique; repeated: {', '.join(duplicates)}")
        return servers


def config_path(agent: str, directory: str | Path | None = None) -> Path:
    """``directory/<agent>.json``; else ``$PODIUM_AGENT_CONFIG_DIR/<agent>.json`` when that file exists;
    else an installed agent's ``config.json`` beside its module; else the built-in configs' file."""
    if directory:
        return Path(directory) / f"{agent}.json"
    env = os.environ.get(CONFIG_DIR_ENV)
    if env and (Path(env) / f"{agent}.json").exists():
        return Path(env) / f"{agent}.json"
    beside = _installed_config(agent)
    if beside is not None:
        return beside
    return Path(env or CONFIG_DIR) / f"{agent}.json"


def _installed_config(agent: str) -> Path | None:
    """An installed (or command-line) agent's ``config.json``; None for a built-in or unknown agent."""
    from podium.agents.host import sources

    if agent in sources.BUILT_IN or (agent not in sources.installed_names() and agent not in sources._local):
        return None
    try:
        return sources.resolve(agent).config
    except (LookupError, AgentConfigError):
        return None  # the runtime reports a broken agent when it resolves it


def parse_config(data: Any, source: str = "agent config") -> AgentConfig:
    """Validate already-decoded config data; raises ``AgentConfigError`` naming each bad field."""
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise AgentConfigError(f"{source}: {problems}") from exc


def load_config(agent: str, directory: str | Path | None = None) -> AgentConfig:
    """The configuration of ``agent``; an agent without a file gets the empty configuration.

    Raises ``AgentConfigError`` for unreadable JSON or invalid fields, naming the file and field.
    """
    return load_config_file(config_path(agent, directory))


def load_config_file(path: Path) -> AgentConfig:
    """The configuration in ``path``; the empty configuration when there is no such file. Raises
    ``AgentConfigError`` naming the file and field."""
    if not path.exists():
        return AgentConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AgentConfigError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise AgentConfigError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    return parse_config(data, str(path))
