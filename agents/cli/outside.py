"""``podium agents add URL`` / ``podium agents remove NAME``: outside A2A agents, through the registry's HTTP
service (``--registry``, default ``$PODIUM_REGISTRY_URL`` or ``http://127.0.0.1:8701``; bearer token
``$PODIUM_REGISTRY_TOKEN`` when set), so they work against the embedded ``podium up`` as well as on Redis.

The registry fetches the card at URL and admits it by its usual rules (every URL in it on a public host,
unless the registry runs with ``--allow-private-urls``). ``--token-env VAR`` names the environment variable
holding the agent's own bearer token: only the name is stored; the orchestrator reads the variable when it
calls the agent, and never sends the agent Podium's token. Exit status: 0 done, 1 the registry is not
reachable, 2 the registry refused (the reason on one line) or a usage mistake.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import httpx

DEFAULT_REGISTRY_URL = "http://127.0.0.1:8701"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def registry_url(args: argparse.Namespace) -> str:
    return (
        getattr(args, "registry", None) or os.environ.get("PODIUM_REGISTRY_URL") or DEFAULT_REGISTRY_URL
    ).rstrip("/")


def _headers() -> dict[str, str]:
    token = os.environ.get("PODIUM_REGISTRY_TOKEN") or ""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _fail(message: str, status: int = 2) -> int:
    print(f"podium agents: {message}", file=sys.stderr)
    return status


def _refused(response: httpx.Response, what: str) -> int:
    try:
        err = response.json().get("error") or {}
        message, code = str(err.get("message") or response.text), str(err.get("code") or "")
    except (ValueError, AttributeError):
        message, code = response.text.strip() or f"HTTP {response.status_code}", ""
    hint = ""
    if code == "url_not_allowed":
        hint = " (for an agent on this machine, start podium up --allow-private-urls)"
    elif code in ("missing_token", "invalid_token", "token_required"):
        hint = " (set PODIUM_REGISTRY_TOKEN to the registry's token)"
    return _fail(f"the registry refused {what}: {message}{hint}")


def add(args: argparse.Namespace) -> int:
    url = args.target
    if not url or not re.match(r"^https?://", url):
        return _fail(
            f"add needs the http(s) URL of the agent or its card, got {url!r}: podium agents add URL"
        )
    if args.token_env is not None and not ENV_NAME.match(args.token_env):
        return _fail(
            f"--token-env {args.token_env!r}: give the name of an environment variable, e.g. MY_AGENT_TOKEN"
        )
    if args.token_env and not os.environ.get(args.token_env):
        print(
            f"podium agents: note: {args.token_env} is not set here; the orchestrator reads it from its own "
            "environment when it calls the agent",
            file=sys.stderr,
        )
    body: dict[str, Any] = {"url": url}
    if args.name:
        body["name"] = args.name
    if args.token_env:
        body["tokenEnv"] = args.token_env
    registry = registry_url(args)
    try:
        response = httpx.post(
            f"{registry}/agents", json=body, headers=_headers(), timeout=30, trust_env=False
        )
    except httpx.HTTPError as exc:
        return _unreachable(registry, exc)
    if response.status_code not in (200, 201):
        return _refused(response, url)
    entry = response.json()
    skills = ", ".join(entry.get("skills") or []) or "none"
    print(f"added outside agent {entry.get('name')} from {entry.get('url') or url} (skills: {skills})")
    return 0


def remove(args: argparse.Namespace) -> int:
    name = args.target
    if not name:
        return _fail("remove needs the agent's NAME: podium agents remove NAME")
    registry = registry_url(args)
    try:
        agents = httpx.get(f"{registry}/agents", params={"all": "1"}, timeout=10, trust_env=False).json()
        row = next((a for a in agents.get("agents", []) if a.get("name") == name), None)
        if row is None:
            return _fail(f"no agent named {name!r} is registered at {registry} (see podium agents)")
        if not row.get("static"):
            return _fail(f"{name!r} is one of Podium's own agents, not an outside one; stop it instead")
        response = httpx.delete(f"{registry}/agents/{name}", headers=_headers(), timeout=10, trust_env=False)
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return _unreachable(registry, exc)
    if response.status_code != 200:
        return _refused(response, f"removing {name!r}")
    print(f"removed agent {name}")
    return 0


def listed(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    """The registry's agents over its HTTP service (when Redis is not configured), or None when it does not
    answer."""
    try:
        params = {"all": "1"} if args.all else {}
        response = httpx.get(f"{registry_url(args)}/agents", params=params, timeout=5, trust_env=False)
        if response.status_code != 200:
            return None
        return list(response.json().get("agents") or [])
    except (httpx.HTTPError, ValueError):
        return None


def _unreachable(registry: str, exc: Exception) -> int:
    return _fail(
        f"cannot reach the registry at {registry} ({type(exc).__name__}): start podium up (or podium registry), "
        "or pass --registry URL",
        1,
    )
