"""``podium eval FILE``: ask an orchestrator every question of an evaluation set and score the answers.

Each case's row (id, pass/fail, why, time) is printed as it finishes, then totals by tag. With ``--json``
the rows go to stderr as progress and stdout gets one object: ``passed``, ``failed``, ``total``,
``pass_rate``, ``by_tag`` and ``cases``. Exit status: 0 when every case passed (or the pass rate reaches
``--min-pass-rate``), 1 otherwise, 2 for a bad file or flag, 3 when the orchestrator cannot be reached.
The file format is in :mod:`podium.agents.evals.cases`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

import anyio
import httpx
from a2a.client.errors import A2AClientError
from a2a.utils.errors import A2AError

from podium.agents.cli.ask import DEFAULT_URL
from podium.agents.evals.cases import CaseFileError, Outcome, load
from podium.agents.evals.runner import by_tag, run_cases

OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3


def _rate(value: str) -> float:
    try:
        rate = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number; give a rate like 0.9 or 90%") from None
    if not 0 <= rate <= 1:
        raise argparse.ArgumentTypeError(f"{value!r} is outside 0..1 (or 0%..100%)")
    return rate


def _positive(kind: type) -> Any:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a {kind.__name__}") from None
        if number <= 0:
            raise argparse.ArgumentTypeError(f"{value!r} must be greater than 0")
        return number

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="the evaluation set: JSONL, one case a line")
    parser.add_argument(
        "--url", default=None, help=f"the orchestrator's A2A URL (default $PODIUM_URL or {DEFAULT_URL})"
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")
    parser.add_argument(
        "--concurrency", type=_positive(int), default=4, help="cases asked at the same time (default 4)"
    )
    parser.add_argument(
        "--timeout", type=_positive(float), default=120.0, help="seconds allowed per case (default 120)"
    )
    parser.add_argument(
        "--min-pass-rate",
        type=_rate,
        default=1.0,
        help="exit 0 when at least this share passes, e.g. 0.9 or 90%% (default: every case)",
    )
    parser.add_argument("--token", default=None, help="bearer token (default $PODIUM_A2A_TOKEN)")


class Table:
    """Rows printed as cases finish: ``[n/N] PASS id  1.2s  why``."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.done = total, out, 0

    def header(self, width: int) -> None:
        self.width = width
        print(
            f"{'':>{len(str(self.total)) * 2 + 3}} {'result':<6} {'case':<{width}} {'time':>7}  why",
            file=self.out,
        )

    def row(self, outcome: Outcome) -> None:
        self.done += 1
        mark = "PASS" if outcome.passed else "FAIL"
        count = f"[{self.done:>{len(str(self.total))}}/{self.total}]"
        print(
            f"{count} {mark:<6} {outcome.case.id:<{self.width}} {outcome.seconds:>6.1f}s  {outcome.why}".rstrip(),
            file=self.out,
            flush=True,
        )


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    passed = sum(o.passed for o in outcomes)
    total = len(outcomes)
    return {
        "passed": passed,
        "failed": total - passed,
        "total": total,
        "pass_rate": round(passed / total, 4) if total else 0.0,
        "by_tag": by_tag(outcomes),
        "cases": [o.as_json() for o in outcomes],
    }


def print_totals(result: dict[str, Any], out: TextIO) -> None:
    print("", file=out)
    print(f"{'tag':<16} {'passed':>6} {'total':>6} {'rate':>6}", file=out)
    for tag, entry in result["by_tag"].items():
        print(
            f"{tag:<16} {entry['passed']:>6} {entry['total']:>6} {entry['passed'] / entry['total']:>6.0%}",
            file=out,
        )
    print(
        f"{'all':<16} {result['passed']:>6} {result['total']:>6} {result['pass_rate']:>6.0%}",
        file=out,
    )


def run(args: argparse.Namespace) -> int:
    try:
        cases = load(args.file)
    except CaseFileError as exc:
        print(f"podium eval: {exc}", file=sys.stderr)
        return USAGE
    url = (args.url or os.environ.get("PODIUM_URL") or DEFAULT_URL).rstrip("/")
    token = args.token or os.environ.get("PODIUM_A2A_TOKEN") or None
    out = sys.stderr if args.json else sys.stdout
    table = Table(len(cases), out)
    table.header(max(len(c.id) for c in cases))
    try:
        outcomes = anyio.run(
            lambda: run_cases(
                url,
                cases,
                concurrency=args.concurrency,
                timeout_s=args.timeout,
                token=token,
                on_outcome=table.row,
            )
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, OSError) as exc:
        print(
            f"podium eval: cannot reach the orchestrator at {url} ({exc}); start it with `podium up`, or pass --url",
            file=sys.stderr,
        )
        return UNREACHABLE
    except (A2AError, A2AClientError, httpx.HTTPError) as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if "connect" in message.lower() or "network" in message.lower():
            message = f"cannot reach the orchestrator ({message}); start it with `podium up`, or pass --url"
        print(f"podium eval: {url}: {message}", file=sys.stderr)
        return UNREACHABLE
    result = summary(outcomes)
    print_totals(result, out)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    enough = result["total"] and result["passed"] / result["total"] >= args.min_pass_rate
    return OK if enough else FAILED
