"""``podium acl``: a Redis ACL file with one least-privilege user per agent (see bus/acl.py).

Agents come from the cards (``PODIUM_CARDS_DIR``) and the installed agents (entry point group
``podium.agents``), or ``--agents``. Each user's password comes from
``PODIUM_REDIS_PASSWORD_<USER>`` in the environment or in ``--env-file``; with ``--env-file`` the missing
ones are generated and appended to that file (created with mode 0600), and with ``--with-tokens`` the
A2A, MCP, registry and console tokens docker-compose.yml requires too. Passwords never appear in the
output: the ACL file holds their SHA-256 only. ``--kubernetes-secret FILE`` also writes, for
deploy/kubernetes, the Secret ``podium-secrets`` (every password and token) and the Secret
``podium-redis-acl`` (the ACL file), plus ``podium-clients`` when ``PODIUM_CLIENTS_FILE`` names a file. Give each agent its user in ``REDIS_URL``
(``redis://analyst:PASSWORD@host:6379/0``) and load the file with ``redis-server --aclfile FILE``.

Exit status: 0 when written, 2 for a usage mistake (a password missing, a bad name, a file not writable).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path

from podium.bus.acl import SERVICE_USERS, acl_file, password_variable, users
from podium.bus.keys import Keys
from podium.registry.cards import card_names

TOKENS = ("PODIUM_A2A_TOKEN", "PODIUM_MCP_TOKEN", "PODIUM_REGISTRY_TOKEN", "PODIUM_CONSOLE_TOKEN")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument(
        "--out", default=None, metavar="FILE", help="write the ACL file here (default: stdout)"
    )
    parser.add_argument(
        "--env-file",
        default=None,
        metavar="FILE",
        help="read passwords (PODIUM_REDIS_PASSWORD_<USER>=...) from FILE, adding generated ones for the rest",
    )
    parser.add_argument(
        "--agents", default=None, help="comma-separated agents (default: every card and installed agent)"
    )
    parser.add_argument(
        "--kubernetes-secret",
        default=None,
        metavar="FILE",
        help="also write the passwords, tokens and ACL file as Kubernetes Secret manifests to FILE "
        "(deploy/kubernetes/secrets/podium-secrets.yaml)",
    )
    parser.add_argument(
        "--with-tokens",
        action="store_true",
        help=f"also generate {', '.join(TOKENS)} into --env-file where missing (for docker-compose.yml)",
    )


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (comments and blank lines skipped; quotes around a value removed)."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found[key.strip().removeprefix("export ").strip()] = value
    return found


def run(args: argparse.Namespace) -> int:
    def fail(message: str) -> int:
        print(f"podium acl: {message}", file=sys.stderr)
        return 2

    agents = [a.strip() for a in args.agents.split(",") if a.strip()] if args.agents else _every_agent()
    if not agents:
        return fail("no agents: no cards found (set PODIUM_CARDS_DIR) and no --agents")
    try:
        keys = Keys(args.namespace or os.environ.get("PODIUM_NAMESPACE") or "podium")
    except ValueError as exc:
        return fail(str(exc))
    env_file = Path(args.env_file) if args.env_file else None
    if args.with_tokens and env_file is None:
        return fail("--with-tokens needs --env-file FILE: the tokens are written there")
    known = {**(read_env_file(env_file) if env_file else {}), **os.environ}
    passwords: dict[str, str] = {}
    generated: list[str] = []
    for user in [*SERVICE_USERS, *agents]:
        value = known.get(password_variable(user), "")
        if not value:
            if env_file is None:
                return fail(
                    f"no password for user {user!r}: set {password_variable(user)}, "
                    "or pass --env-file FILE to generate the missing ones there"
                )
            value = secrets.token_urlsafe(24)  # URL-safe: goes into REDIS_URL as it is
            generated.append(user)
        passwords[user] = value
    try:
        text = acl_file(users(keys, agents, passwords))
    except ValueError as exc:
        return fail(str(exc))
    secrets_out = {password_variable(u): passwords[u] for u in generated}
    if args.with_tokens:
        secrets_out.update({t: secrets.token_urlsafe(32) for t in TOKENS if not known.get(t)})
    manifest = None
    if args.kubernetes_secret:
        values = {password_variable(u): p for u, p in passwords.items()}
        values |= {t: secrets_out.get(t) or known.get(t, "") for t in TOKENS}
        missing = [t for t, v in values.items() if not v]
        if missing:
            return fail(f"--kubernetes-secret: no {', '.join(missing)}; add --with-tokens to generate them")
        try:
            manifest = kubernetes_secrets(values, text, known.get("PODIUM_CLIENTS_FILE") or None)
        except OSError as exc:
            return fail(f"PODIUM_CLIENTS_FILE: cannot read {exc.filename}: {exc.strerror}")
    try:
        if env_file is not None and secrets_out:
            _append_secrets(env_file, secrets_out)
        if manifest is not None:
            _write_private(Path(args.kubernetes_secret), manifest)
        if args.out:
            Path(args.out).write_text(text)
        else:
            sys.stdout.write(text)
    except OSError as exc:
        return fail(f"cannot write {exc.filename}: {exc.strerror}")
    where = args.out or "stdout"
    if args.kubernetes_secret:
        where += f" (and as Kubernetes Secrets to {args.kubernetes_secret})"
    tokens = len(secrets_out) - len(generated)
    note = f"; {len(generated)} password(s) generated into {env_file}" if generated else ""
    note += f"; {tokens} token(s) generated into {env_file}" if tokens else ""
    print(
        f"podium acl: {len(passwords)} users ({', '.join(passwords)}) for namespace {keys.namespace!r} "
        f"written to {where}{note}",
        file=sys.stderr,
    )
    return 0


def _append_secrets(path: Path, values: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as out:
        if path.stat().st_size and not path.read_text().endswith("\n"):
            out.write("\n")
        out.writelines(f"{k}={v}\n" for k, v in values.items())


def kubernetes_secrets(values: dict[str, str], acl: str, clients_file: str | None = None) -> str:
    """Kubernetes Secret manifests (YAML): ``podium-secrets`` holding ``values`` (each pod takes its keys by
    ``secretKeyRef``), ``podium-redis-acl`` holding the ACL file, and ``podium-clients`` holding the clients
    file when one is named. Strings are JSON-quoted, which YAML reads as they are. Raises ``OSError`` when
    the clients file cannot be read."""

    def secret(name: str, data: dict[str, str], note: str) -> str:
        lines = [f"# {note}", "apiVersion: v1", "kind: Secret", "metadata:", f"  name: {name}", "  labels:"]
        lines += ["    app.kubernetes.io/part-of: podium", "type: Opaque", "stringData:"]
        lines += [f"  {key}: {json.dumps(value)}" for key, value in data.items()]
        return "\n".join(lines) + "\n"

    docs = [
        secret(
            "podium-secrets", values, "Redis passwords and tokens, written by podium acl: keep out of git"
        ),
        secret(
            "podium-redis-acl", {"users.acl": acl}, "The Redis ACL file (password hashes only), for Redis"
        ),
    ]
    if clients_file:
        path = Path(clients_file)
        docs.append(secret("podium-clients", {path.name: path.read_text()}, "Outside callers' credentials"))
    return "---\n".join(docs)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _every_agent() -> list[str]:
    """Every card's agent, then every agent an installed distribution offers."""
    from podium.agents.host.sources import installed_names

    cards = card_names()
    return [*cards, *(name for name in installed_names() if name not in cards)]
