"""deploy/kubernetes as the tests see it: built by ``kubectl kustomize`` (no cluster) in a copy of the folder,
with the Secrets ``podium acl --kubernetes-secret`` generates, and the KEDA CRD schemas kept beside this
file (KEDA v2.20.1, config/crd/bases)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import CI, ROOT

KUBECTL = shutil.which("kubectl")
DEPLOY = ROOT / "deploy" / "kubernetes"
KEDA_CRDS = Path(__file__).parent / "keda"
KEDA_VERSION = "v2.20.1"


def no_kubectl() -> None:
    import pytest

    reason = "kubectl not installed: `kubectl kustomize` builds deploy/kubernetes"
    if CI:
        pytest.fail(f"{reason} (CI is set)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Build:
    """One kustomization, built: its objects, and the secrets it was built with."""

    objects: list[dict[str, Any]]
    env: dict[str, str]  # what podium acl wrote into the env file
    acl: str  # the ACL file podium acl wrote

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}

    def one(self, kind: str, name: str) -> dict[str, Any]:
        return self.of(kind)[name]

    def config(self) -> dict[str, str]:
        return self.one("ConfigMap", "podium-config")["data"]

    def secret(self, name: str) -> dict[str, str]:
        return self.one("Secret", name)["stringData"]


def generate(workdir: Path) -> tuple[Path, dict[str, str], str]:
    """A copy of deploy/kubernetes with its Secrets generated as the docs say. Returns (folder, env, acl)."""
    from podium.agents.cli.acl import read_env_file

    target = workdir / "kubernetes"
    shutil.copytree(DEPLOY, target, ignore=shutil.ignore_patterns("podium-secrets.yaml", "*.env"))
    env_file, acl_file = workdir / "podium.env", workdir / "users.acl"
    done = subprocess.run(
        [sys.executable, "-m", "podium.agents.cli", "acl", "--env-file", str(env_file), "--with-tokens",
         "--out", str(acl_file), "--kubernetes-secret", str(target / "secrets" / "podium-secrets.yaml")],
        env={k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return target, read_env_file(env_file), acl_file.read_text()


def kustomize(folder: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [o for o in yaml.safe_load_all(done.stdout) if o]


def crd_schema(kind: str) -> dict[str, Any]:
    """The served version's OpenAPI schema of a KEDA CRD, made strict: an object that lists its properties
    admits no others (the API server would prune them silently; a typo must fail here instead)."""
    plural = {"ScaledObject": "scaledobjects", "TriggerAuthentication": "triggerauthentications"}[kind]
    crd = yaml.safe_load((KEDA_CRDS / f"keda.sh_{plural}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["served"] and v["storage"])
    return _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def _strict(node: Any) -> Any:
    if isinstance(node, dict):
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


def env_of(container: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    """A container's environment as Kubernetes computes it: envFrom ConfigMaps first, then ``env`` with
    ``$(VAR)`` references to variables defined before; secret values as ``<secret:NAME/KEY>``."""
    out: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "podium-config", source
        out.update(config)
    for item in container.get("env", []):
        if "value" in item:
            value = item["value"]
            for name, known in out.items():
                value = value.replace(f"$({name})", known)
            out[item["name"]] = value
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            out[item["name"]] = f"<secret:{ref['name']}/{ref['key']}>"
    return out
