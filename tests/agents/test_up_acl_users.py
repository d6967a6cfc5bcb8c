"""`podium up` with the ACLs on: given the passwords `podium acl --env-file` writes, each agent runs as its own
Redis user and the registry as `registry`, and no child holds another user's password. Real processes against a
real redis-server loaded with the ACL file; each child's environment read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from podium.agents.cli.acl import read_env_file
from tests.proctree import descendants, needs_proc
from tests.support import REDIS_SERVER, ROOT, Proc, RedisServer, wait_until

pytestmark = [needs_proc, pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")]

READY = "Ctrl-C stops everything."


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(e.decode(errors="replace").partition("=")[::2] for e in raw if b"=" in e)


def test_podium_up_runs_each_agent_as_its_own_redis_user(tmp_path: Path) -> None:
    ns = f"t{uuid.uuid4().hex[:10]}"
    env_file, acl = tmp_path / "podium.env", tmp_path / "users.acl"
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "acl", "--namespace", ns, "--agents", "echo,analyst",
         "--env-file", str(env_file), "--out", str(acl)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    passwords = read_env_file(env_file)
    admin = passwords["PODIUM_REDIS_PASSWORD_ADMIN"]
    server = RedisServer(extra_args=["--aclfile", str(acl)], auth=("admin", admin)).start()
    url = f"redis://admin:{admin}@127.0.0.1:{server.port}/0"
    up = Proc.podium(
        "up", "--redis-url", url, "--namespace", ns, "--agents", "echo,analyst", "--any-port", "--no-console",
        env={**os.environ, **passwords},
    )  # fmt: skip
    try:
        wait_until(lambda: READY in up.output(), timeout=240, what="podium up ready")
        children = descendants(up.proc.pid)
        users: dict[str, str] = {}
        for pid, cmd in children.items():
            if " agent " in f" {cmd} " or " registry " in f" {cmd} ":
                env = _environ(pid)
                role = "registry" if " registry " in f" {cmd} " else cmd.split(" agent ", 1)[1].split()[0]
                users[role] = urlsplit(env["REDIS_URL"]).username or ""
                assert not [k for k in env if k.startswith("PODIUM_REDIS_PASSWORD_")], (role, sorted(env))
                assert admin not in " ".join(env.values()), role
        assert users == {"registry": "registry", "echo": "echo", "analyst": "analyst"}, users
        assert "alive in the registry: echo, analyst" in up.output(), up.output()[-3000:]
        assert "NOPERM" not in up.output() and "Traceback" not in up.output(), up.output()[-3000:]
    finally:
        up.terminate()
        up.close()
        server.close()
