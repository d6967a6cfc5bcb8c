"""Where an agent comes from: Podium's own, an installed distribution, or files named on the command line.

- Built-in: its module in ``EXECUTORS`` (or a config's ``"executor"``), its card in ``cards/NAME.json``, its
  config in ``agents/config/NAME.json``.
- Installed: an entry point in the group ``podium.agents``, ``NAME = "package.module"``; the module defines
  ``build(ctx) -> AgentExecutor`` and has ``card.json`` (its card) and ``config.json`` (its MCP mounts,
  optional) beside it. Every command treats it as it treats a built-in agent.
- Local: ``podium agent --card FILE --executor package.module`` (a ``config.json`` beside the card is used).

Every problem (a module that does not import, a missing card, a name two distributions offer) is an
:class:`AgentSourceError` with one line naming the agent, where it came from, and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

from podium.agents.host.config import AgentConfigError
from podium.bus.keys import validate_name

ENTRY_POINT_GROUP = "podium.agents"
# agent name -> module with ``build(ctx: AgentContext) -> AgentExecutor``
BUILT_IN: dict[str, str] = {
    "echo": "podium.agents.specialists.echo",
    "researcher": "podium.agents.specialists.researcher",
    "analyst": "podium.agents.specialists.analyst",
    "writer": "podium.agents.specialists.writer",
    "reviewer": "podium.agents.specialists.reviewer",
    "orchestrator": "podium.agents.orchestrator",
}


class AgentSourceError(AgentConfigError):
    """An agent cannot be loaded from where it comes from; the message names it and the fix."""

    default = "invalid agent"


@dataclass(frozen=True)
class AgentSource:
    """One agent: the module that builds it, and its card and config files (None: the built-in places)."""

    name: str
    module: str
    card: Path | None = None
    config: Path | None = None
    origin: str = "built-in"

    @property
    def installed(self) -> bool:
        return self.origin != "built-in"


_local: dict[str, AgentSource] = {}


def add_local(source: AgentSource) -> None:
    """Make ``source`` known in this process (``podium agent --card FILE --executor MODULE``)."""
    _local[source.name] = source


@cache
def _entry_points() -> dict[str, list[EntryPoint]]:
    """The group's entry points by name, one per distribution (a distribution seen twice on the path
    counts once)."""
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        same = found.setdefault(ep.name, [])
        if not any(_dist(e) == _dist(ep) for e in same):
            same.append(ep)
    return found


def _dist(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "?"


def _origin(ep: EntryPoint) -> str:
    version = f" {ep.dist.version}" if ep.dist is not None else ""
    return f"distribution {_dist(ep)}{version} (entry point {ep.name} = {ep.value!r} in {ENTRY_POINT_GROUP})"


def installed_names() -> list[str]:
    """Every agent name installed distributions offer, sorted (broken ones too: :func:`resolve` says why),
    but the built-ins' names: those stay Podium's own (:func:`shadowed` says which are ignored)."""
    return sorted(n for n in _entry_points() if n not in _local and n not in BUILT_IN)


def shadowed() -> list[str]:
    """One line for each installed entry point that reuses a built-in agent's name, which is ignored."""
    return [
        f"agent {name}: {_origin(ep)} reuses the name of a built-in agent, so it is ignored; rename the "
        f"entry point in that distribution's pyproject.toml"
        for name, offered in sorted(_entry_points().items())
        if name in BUILT_IN
        for ep in offered
    ]


def agent_names() -> list[str]:
    """Every agent this process can run: the built-ins whose module is installed, then installed agents."""
    own = [n for n in BUILT_IN if importlib.util.find_spec(BUILT_IN[n]) is not None]
    return [*own, *(n for n in [*installed_names(), *_local] if n not in own)]


def resolve(name: str) -> AgentSource:
    """Where agent ``name`` comes from (a built-in's name is always the built-in). Raises ``LookupError`` for
    an unknown name and ``AgentSourceError`` for an installed one that cannot be used (a bad name, two
    distributions, no module)."""
    if name in _local:
        return _local[name]
    offered = _entry_points().get(name, [])
    if name in BUILT_IN or not offered:
        return _built_in(name)
    if len(offered) > 1:
        raise AgentSourceError(
            f"agent {name}: offered by several distributions ({', '.join(_dist(e) for e in offered)}); "
            f"pip uninstall all but one, or rename the entry point in one of them"
        )
    ep = offered[0]
    try:
        validate_name("agent name", name)
    except ValueError as exc:
        raise AgentSourceError(f"{_origin(ep)}: {exc}; rename the entry point") from None
    module = ep.value.strip()
    if ":" in module or not module:
        raise AgentSourceError(
            f"agent {name}: {_origin(ep)} must name a module (package.module) that defines build(ctx), "
            f'not an object; write {name} = "{module.partition(":")[0]}"'
        )
    where = _module_dir(name, module, _origin(ep))
    return AgentSource(name, module, where / "card.json", where / "config.json", _origin(ep))


def _built_in(name: str) -> AgentSource:
    from podium.agents.host.config import load_config

    module = load_config(name).executor or BUILT_IN.get(name)
    if module is None:
        known = ", ".join(agent_names())
        raise LookupError(
            f"no agent named {name!r}; known agents: {known}. Install a package that offers it "
            f"(entry point group {ENTRY_POINT_GROUP}; `podium new agent {name}` writes one), or run a card "
            f"and module directly: podium agent --card FILE --executor package.module"
        )
    return AgentSource(name, module)


def _module_dir(name: str, module: str, origin: str) -> Path:
    """The folder holding ``module``'s file, found without running the module itself (its parent
    packages are imported). Raises ``AgentSourceError`` when it cannot be found or imported."""
    try:
        spec = importlib.util.find_spec(module)
    except Exception as exc:  # a parent package's import error, reported in one line
        raise AgentSourceError(
            f"agent {name}: cannot import {module!r} ({type(exc).__name__}: {exc}) for {origin}; fix the "
            f"package, or reinstall it (pip install -e DIR)"
        ) from None
    if spec is None or spec.origin is None:
        raise AgentSourceError(
            f"agent {name}: no module {module!r} for {origin}; install the package that holds it "
            f"(pip install -e DIR) or correct the entry point"
        )
    return Path(spec.origin).parent


def import_module(source: AgentSource) -> ModuleType:
    """``source``'s module, checked to define ``build``. Raises ``AgentSourceError`` naming the agent."""
    try:
        module = importlib.import_module(source.module)
    except Exception as exc:  # whatever the user's module raises on import, in one line
        raise AgentSourceError(
            f"agent {source.name}: cannot import {source.module!r} ({_first_line(exc)}); "
            f"fix the module{_from(source)}"
        ) from None
    if not callable(getattr(module, "build", None)):
        raise AgentSourceError(
            f"agent {source.name}: module {source.module!r} defines no build(ctx) -> AgentExecutor; add one"
        )
    return module


def check(source: AgentSource) -> None:
    """Everything that can be checked without running the agent: its module imports and defines
    ``build``, its card validates, its config validates. Raises ``AgentSourceError`` or the card's and
    config's own errors (``CardError``, ``AgentConfigError``), each naming the file."""
    from podium.agents.host.config import load_config, load_config_file
    from podium.registry.cards import load_card

    if source.card is not None and not source.card.is_file():
        raise AgentSourceError(
            f"agent {source.name}: no card at {source.card}; put the agent's card.json beside its module "
            f"(and list it in the package data)"
        )
    import_module(source)
    load_card(source.card or source.name, expect_name=source.name)
    if source.config is not None:
        load_config_file(source.config)
    else:
        load_config(source.name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _from(source: AgentSource) -> str:
    return f" ({source.origin})" if source.installed else ""


def describe_error(exc: BaseException) -> str:
    """One line for what ``build`` raised."""
    return _first_line(exc)
