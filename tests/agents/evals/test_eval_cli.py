"""`podium eval` as a user runs it, against an embedded `podium up`: the table with progress, totals by
tag, the JSON object, exit statuses; and the repository's evaluation set (evals/offline.jsonl) passing
its bar, as CI runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, Proc, free_port, wait_until

LINE = re.compile(r"^\s+orchestrator\s+(http://\S+)$", re.M)
EVAL_SETS = [ROOT / "evals" / "offline.jsonl", ROOT / "evals" / "unseen.jsonl"]
MIN_PASS_RATE = "0.9"  # the bar docs/evals.md states, with the pass rates before and after by tag


@pytest.fixture(scope="module")
def orchestrator() -> Iterator[str]:
    proc = Proc.podium("up", "--any-port", env={"REDIS_URL": "", "ANTHROPIC_API_KEY": ""})

    def ready() -> bool:
        if not proc.alive():
            raise RuntimeError(f"podium up exited:\n{proc.output()}")
        return "Ctrl-C stops everything." in proc.output()

    try:
        wait_until(ready, timeout=90, what="podium up to print its URLs")
        match = LINE.search(proc.output())
        assert match, proc.output()
        yield match.group(1)
    finally:
        proc.close()


def _eval(*args: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "eval", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _write(path: Path, *cases: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


SMALL = (
    {"id": "percent", "question": "What is 15% of 240?", "expect": {"number": 36}, "tags": ["math"]},
    {"id": "wrong", "question": "What is 2 + 2?", "expect": {"number": 5}, "tags": ["math"]},
    {
        "id": "capital",
        "question": "What is the capital of France?",
        "expect": {"refuse": True},
        "tags": ["refuse"],
    },
)


def test_table_with_progress_totals_by_tag_and_exit_status(orchestrator: str, tmp_path: Path) -> None:
    bank = _write(tmp_path / "small.jsonl", *SMALL)
    done = _eval(str(bank), "--url", orchestrator, "--concurrency", "2")
    assert done.returncode == 1, done.stdout + done.stderr  # one case fails
    out = done.stdout
    rows = re.findall(r"^\[(\d)/3\] (PASS|FAIL) +(\S+) +[\d.]+s *(.*)$", out, re.M)
    assert sorted(r[1:3] for r in rows) == [("FAIL", "wrong"), ("PASS", "capital"), ("PASS", "percent")], out
    assert sorted(r[0] for r in rows) == ["1", "2", "3"]  # numbered as they finish
    assert next(r[3] for r in rows if r[2] == "wrong").startswith("does not state 5"), out
    assert re.search(r"^math\s+1\s+2\s+50%$", out, re.M) and re.search(r"^refuse\s+1\s+1\s+100%$", out, re.M)
    assert re.search(r"^all\s+2\s+3\s+67%$", out, re.M), out
    relaxed = _eval(str(bank), "--url", orchestrator, "--min-pass-rate", "60%")
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr


def test_json_has_passed_failed_total_and_the_cases(orchestrator: str, tmp_path: Path) -> None:
    bank = _write(tmp_path / "small.jsonl", *SMALL)
    done = _eval(str(bank), "--url", orchestrator, "--json")
    result = json.loads(done.stdout)
    assert (result["passed"], result["failed"], result["total"]) == (2, 1, 3)
    assert [c["id"] for c in result["cases"]] == ["percent", "wrong", "capital"]  # in the file's order
    wrong = result["cases"][1]
    assert wrong["passed"] is False and wrong["state"] == "completed" and "4" in wrong["answer"]
    assert result["by_tag"] == {"math": {"passed": 1, "total": 2}, "refuse": {"passed": 1, "total": 1}}
    assert "[3/3]" in done.stderr  # progress still shows, on stderr
    only_good = _write(tmp_path / "good.jsonl", SMALL[0], SMALL[2])
    assert _eval(str(only_good), "--url", orchestrator, "--json").returncode == 0


def test_bad_file_flag_or_url_is_one_line() -> None:
    for args, status, words in [
        (["missing.jsonl"], 2, "missing.jsonl: cannot read it"),
        (["evals/offline.jsonl", "--min-pass-rate", "2"], 2, "outside 0..1"),
        (["evals/offline.jsonl", "--concurrency", "0"], 2, "must be greater than 0"),
        (
            ["evals/offline.jsonl", "--url", f"http://127.0.0.1:{free_port()}"],
            3,
            "cannot reach the orchestrator",
        ),
    ]:
        done = _eval(*args)
        assert done.returncode == status, done.stderr
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("bank", EVAL_SETS, ids=[p.name for p in EVAL_SETS])
def test_the_evaluation_sets_pass_their_bar(orchestrator: str, bank: Path) -> None:
    done = _eval(
        str(bank), "--url", orchestrator, "--json", "--concurrency", "4", "--min-pass-rate", MIN_PASS_RATE
    )
    result = json.loads(done.stdout)
    failed = [f"{c['id']}: {c['why']}" for c in result["cases"] if not c["passed"]]
    assert result["total"] >= (60 if bank.name == "offline.jsonl" else 30)
    assert done.returncode == 0, f"{result['passed']}/{result['total']} passed; failed:\n" + "\n".join(failed)
