"""Under CI a missing redis-server fails the run loudly; elsewhere the tests that need it skip."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import ROOT


def _pytest(*args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = "/nonexistent"  # no redis-server, no redis-cli
    if ci:
        env["CI"] = "1"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_without_redis_server_ci_fails_the_run() -> None:
    done = _pytest("tests/bus/test_task_store.py", "-k", "test_tasks_expire", ci=True)
    assert done.returncode != 0, done.stdout
    assert "CI is set but redis-server is not on PATH" in done.stdout + done.stderr
    assert "apt-get install redis-server" in done.stdout + done.stderr
    assert "passed" not in done.stdout  # stopped before any test ran


def test_under_ci_a_test_missing_redis_server_fails_instead_of_skipping(monkeypatch) -> None:
    import pytest

    from tests import support

    monkeypatch.setattr(support, "CI", True)
    with pytest.raises(pytest.fail.Exception, match="redis-server not found"):
        support.no_redis_server()
    monkeypatch.setattr(support, "CI", False)
    with pytest.raises(pytest.skip.Exception, match="redis-server not found"):
        support.no_redis_server()
