"""``podium new agent NAME [--dir DIR]``: scaffold a ready agent project in DIR/NAME (see agents/scaffold).

Exit status: 0 when written, 2 for a bad name or a folder that already exists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["agent"], help="what to create: agent")
    parser.add_argument("name", help="the agent's name, e.g. word-count (also the distribution's name)")
    parser.add_argument("--dir", default=".", help="the folder to create NAME/ in (default: here)")


def run(args: argparse.Namespace) -> int:
    from podium.agents.scaffold import ScaffoldError, package_name, write_project

    try:
        files = write_project(args.name, Path(args.dir))
    except (ScaffoldError, OSError) as exc:
        print(f"podium new: {exc}", file=sys.stderr)
        return 2
    root = files[0].parent
    package = package_name(args.name)
    print(f"podium new: wrote the agent {args.name} in {root}:")
    for path in files:
        print(f"  {path.relative_to(root)}")
    print(
        f"Next:\n  pip install -e {root}\n  podium up\n"
        f'  podium ask "How many words are in: the quick brown fox"\n'
        f"Your logic goes in {root / package / 'agent.py'}; its skills in {root / package / 'card.json'}."
    )
    return 0
