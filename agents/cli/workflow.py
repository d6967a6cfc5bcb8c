"""``podium workflow add FILE | list | remove NAME``: named workflows, offered as skills of the orchestrator.

With ``REDIS_URL`` (or ``--redis-url``) workflows are kept in Redis, where every orchestrator replica reads
them; without, in the folder ``$PODIUM_WORKFLOWS_DIR`` (default ``~/.config/podium/workflows``), which the
embedded ``podium up`` reads. A workflow is checked when added: its plan must parse, and every skill it
calls must be offered by a built-in agent or an agent the registry knows (over Redis, or the registry's
HTTP service at ``$PODIUM_REGISTRY_URL``, default ``http://127.0.0.1:8701``, when it answers).
Exit status: 0 done, 1 Redis unreachable, 2 a usage mistake or a workflow that does not validate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio
import httpx
from redis.exceptions import RedisError

from podium.agents.orchestrator.workflows import (
    SUFFIXES,
    Workflow,
    WorkflowError,
    WorkflowStore,
    check,
    folder,
    load_file,
    read_folder,
)
from podium.bus.connection import connect, redact
from podium.bus.errors import ConfigError
from podium.bus.keys import Keys

DEFAULT_REGISTRY_URL = "http://127.0.0.1:8701"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add", "list", "remove"], help="add FILE, list, remove NAME")
    parser.add_argument("target", nargs="?", help="the workflow file (add) or name (remove)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default $REDIS_URL; none: the folder)")
    parser.add_argument("--namespace", default=None, help="key prefix (default $PODIUM_NAMESPACE or podium)")
    parser.add_argument("--json", action="store_true", help="list: print JSON")


def run(args: argparse.Namespace) -> int:
    def fail(message: str, status: int = 2) -> int:
        print(f"podium workflow: {message}", file=sys.stderr)
        return status

    if args.action in ("add", "remove") and not args.target:
        what = "FILE" if args.action == "add" else "NAME"
        return fail(f"{args.action} needs a {what}: podium workflow {args.action} {what}")
    url = args.redis_url or os.environ.get("REDIS_URL") or None
    try:
        keys = Keys(args.namespace) if args.namespace else Keys.from_env()
        redis = connect(url) if url else None
    except (ConfigError, ValueError) as exc:
        return fail(str(exc))
    store = WorkflowStore(redis, keys)
    try:
        if args.action == "add":
            workflow = load_file(args.target)
            return anyio.run(_add, store, workflow, args.target)
        if args.action == "remove":
            return anyio.run(_remove, store, args.target)
        return anyio.run(_list, store, args.json)
    except WorkflowError as exc:
        return fail(exc.message)
    except (RedisError, OSError) as exc:
        return fail(f"cannot reach Redis at {redact(url or '')}: {exc}", 1)


async def _add(store: WorkflowStore, workflow: Workflow, source: str) -> int:
    skills, agents = await known_skills(store)
    plan = check(workflow, skills, agents, source=source)
    if store.redis is not None:
        await store.add(workflow)
        where = f"Redis (namespace {store.keys.namespace!r})"
    else:
        path = folder()
        path.mkdir(parents=True, exist_ok=True)
        _drop_from_folder(workflow.name)
        (path / f"{workflow.name}.json").write_text(
            json.dumps(workflow.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2) + "\n"
        )
        where = str(path)
    inputs = ", ".join(s.name for s in workflow.inputs) or "none"
    print(
        f"workflow {workflow.name} added to {where}: {len(plan.steps)} step(s), inputs: {inputs}; "
        f"the orchestrator offers it as skill {workflow.skill_id}"
    )
    if store.redis is not None:
        await store.redis.aclose()
    return 0


async def _remove(store: WorkflowStore, name: str) -> int:
    removed = await store.remove(name) if store.redis is not None else _drop_from_folder(name)
    if store.redis is not None:
        await store.redis.aclose()
    if not removed:
        where = "in Redis" if store.redis is not None else f"in {folder()}"
        print(
            f"podium workflow: no workflow named {name!r} {where} (see podium workflow list)", file=sys.stderr
        )
        return 2
    print(f"workflow {name} removed")
    return 0


async def _list(store: WorkflowStore, as_json: bool) -> int:
    workflows = await store.all()
    _, problems = read_folder()
    if store.redis is not None:
        await store.redis.aclose()
    for problem in problems:
        print(f"podium workflow: skipped {problem}", file=sys.stderr)
    if as_json:
        print(json.dumps([w.model_dump(mode="json", by_alias=True) for w in workflows.values()], indent=2))
        return 0
    if not workflows:
        print("no workflows; add one with podium workflow add FILE")
        return 0
    rows = [("NAME", "STEPS", "INPUTS", "DESCRIPTION")]
    for w in workflows.values():
        steps = len(w.plan.get("steps") or [])
        rows.append((w.name, str(steps), ", ".join(s.name for s in w.inputs) or "-", w.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:3])) + "  " + r[3])
    return 0


async def known_skills(store: WorkflowStore) -> tuple[set[str], set[str] | None]:
    """Skills (and agents) a workflow may call: the built-in agents' cards, the registry's agents over Redis,
    and those the registry's HTTP service lists when it answers. Agents are None when only cards were read
    (an agent pinned by name is then checked when the workflow runs)."""
    from podium.agents.up.config import available_agents
    from podium.registry.cards import load_card
    from podium.registry.errors import RegistryError

    skills: set[str] = set()
    agents: set[str] = set()
    for name in available_agents():
        try:
            card = load_card(name)
        except (RegistryError, OSError):
            continue
        if name != "orchestrator":
            skills |= {s.id for s in card.skills}
            agents.add(name)
    seen = False
    if store.redis is not None:
        from podium.registry.store import Registry

        for entry in await Registry(store.redis, store.keys).list():
            if entry.name != "orchestrator":
                skills |= {s.id for s in entry.card.skills}
                agents.add(entry.name)
                seen = True
    for row in _registry_http():
        if row.get("name") != "orchestrator":
            skills |= set(row.get("skills") or [])
            agents.add(str(row.get("name")))
            seen = True
    return skills, agents if seen else None


def _registry_http() -> list[dict[str, Any]]:
    url = (os.environ.get("PODIUM_REGISTRY_URL") or DEFAULT_REGISTRY_URL).rstrip("/")
    try:
        response = httpx.get(f"{url}/agents", timeout=2, trust_env=False)
        return list(response.json().get("agents") or []) if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError, AttributeError):
        return []


def _drop_from_folder(name: str) -> bool:
    """Delete the folder's files that hold workflow ``name``; returns whether there was one."""
    path, dropped = folder(), False
    if not path.is_dir():
        return False
    for file in path.iterdir():
        if file.suffix not in SUFFIXES:
            continue
        try:
            found = load_file(file).name
        except WorkflowError:
            found = file.stem
        if found == name:
            file.unlink()
            dropped = True
    return dropped
