"""deploy/kubernetes, checked without a cluster: ``kubectl kustomize`` builds a complete deployment (and the
Redis Cluster variant), every object passes kubernetes-validate's strict schemas and the KEDA objects pass
KEDA's CRD schema, and the manifests agree with the code — agents from the cards, commands the CLI
parses, stream and group names from the key space, ports and probe paths, env var names the code reads,
the MCP servers each agent mounts, the Redis user KEDA reads each inbox as, the Secrets ``podium acl``
writes — down to running the StatefulSet's Redis command and KEDA's exact Redis calls against a real
redis-server loaded with the generated ACL file."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import redis

from podium.agents.cli import COMMANDS, build_parser
from podium.agents.cli.acl import TOKENS
from podium.agents.host.config import load_config
from podium.agents.host.settings import RuntimeConfig
from podium.bus.acl import SERVICE_USERS, password_variable
from podium.bus.keys import Keys
from podium.registry.cards import card_names
from tests.deploy.manifests import (
    KEDA_VERSION,
    KUBECTL,
    Build,
    crd_schema,
    env_of,
    generate,
    kustomize,
    no_kubectl,
)
from tests.support import REDIS_SERVER, ROOT, RedisServer

AGENTS = set(card_names())
MCP_SERVERS = {"docs", "calc", "blackboard"}
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest Kubernetes KEDA 2.20 supports, and the newest schema


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    if KUBECTL is None:
        no_kubectl()
    folder, env, acl = generate(tmp_path_factory.mktemp("k8s"))
    return {
        "in-cluster": Build(kustomize(folder), env, acl),
        "redis-cluster": Build(kustomize(folder / "redis-cluster"), env, acl),
    }


@pytest.fixture(scope="module")
def build(builds: dict[str, Build]) -> Build:
    return builds["in-cluster"]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def test_kustomize_builds_a_complete_deployment(builds: dict[str, Build]) -> None:
    build = builds["in-cluster"]
    kinds = Counter(o["kind"] for o in build.objects)
    deployments = set(build.of("Deployment"))
    assert deployments == AGENTS | {"registry"} | {f"mcp-{m}" for m in MCP_SERVERS}
    assert set(build.of("Service")) == deployments | {"redis"}
    assert (
        set(build.of("ScaledObject")) == AGENTS
    )  # every agent, the orchestrator included, scales on its inbox
    assert {t.removeprefix("podium-redis-") for t in build.of("TriggerAuthentication")} == AGENTS
    assert set(build.of("PodDisruptionBudget")) == deployments
    assert set(build.of("StatefulSet")) == {"redis"} and set(build.of("Job")) == {"podium-prepare"}
    assert set(build.of("Secret")) == {"podium-secrets", "podium-redis-acl"}
    assert kinds["Namespace"] == 1 and all(
        o["metadata"].get("namespace", "podium") == "podium" for o in build.objects
    )
    # The Redis Cluster variant: the same deployment without the in-cluster Redis.
    cluster = builds["redis-cluster"]
    assert Counter(o["kind"] for o in cluster.objects) == kinds - Counter(
        {"StatefulSet": 1, "Service": 1, "NetworkPolicy": 1}
    )


@pytest.mark.parametrize("variant", ["in-cluster", "redis-cluster"])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_the_kubernetes_schemas(
    builds: dict[str, Build], variant: str, version: str
) -> None:
    for obj in builds[variant].objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(obj, version, strict=True)  # raises ValidationError naming the field


@pytest.mark.parametrize("variant", ["in-cluster", "redis-cluster"])
def test_the_keda_objects_pass_the_keda_crd_schema(builds: dict[str, Build], variant: str) -> None:
    """Against KEDA's own CRD schemas (``tests/deploy/keda``, KEDA v2.20.1), made strict."""
    assert KEDA_VERSION in (Path(__file__).parent / "keda" / "keda.sh_scaledobjects.yaml").read_text()
    keda = [o for o in builds[variant].objects if o["apiVersion"].startswith("keda.sh/")]
    assert {o["apiVersion"] for o in keda} == {"keda.sh/v1alpha1"}
    for obj in keda:
        jsonschema.validate(obj, crd_schema(obj["kind"]))
    with pytest.raises(jsonschema.ValidationError):  # the strict schema does catch a misspelt field
        jsonschema.validate(
            {**keda[-1], "spec": {**keda[-1]["spec"], "minReplicas": 0}}, crd_schema(keda[-1]["kind"])
        )


def test_every_command_is_a_podium_command_the_cli_parses(build: Build) -> None:
    workloads = [*build.of("Deployment").values(), *build.of("Job").values()]
    for workload in workloads:
        argv = _container(workload)["args"]
        assert argv[0] in COMMANDS
        build_parser(argv).parse_args(argv)  # exits on an unknown flag
        if argv[0] == "agent":
            assert argv[1] == workload["metadata"]["name"]


def test_each_agent_runs_as_its_own_redis_user_with_the_address_its_card_advertises(build: Build) -> None:
    config = build.config()
    for name, deployment in build.of("Deployment").items():
        env = env_of(_container(deployment), config)
        user = name if name in AGENTS or name == "registry" else ("mcp" if name == "mcp-blackboard" else None)
        if user is None:
            assert "REDIS_URL" not in env, f"{name} keeps no state in Redis and gets no Redis user"
            continue
        secret = f"<secret:podium-secrets/{password_variable(user)}>"
        assert env["REDIS_URL"] == f"redis://{user}:{secret}@{config['PODIUM_REDIS_ADDRESS']}/0", name
        if name in AGENTS:
            expected = config["PODIUM_ORCHESTRATOR_URL"] if name == "orchestrator" else f"http://{name}:8000"
            assert env["PODIUM_PUBLIC_URL"] == expected
            assert env["PODIUM_A2A_TOKEN"] == "<secret:podium-secrets/PODIUM_A2A_TOKEN>"


def test_ports_probes_and_the_pod_security_every_pod_gets(build: Build) -> None:
    grace = float(build.config()["PODIUM_SHUTDOWN_GRACE_S"])
    for name, deployment in build.of("Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        port = int(container["args"][container["args"].index("--port") + 1])
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, (name, probe)
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert {"requests", "limits"} <= set(container["resources"]), name
        assert pod["automountServiceAccountToken"] is False
        # SIGTERM: in-flight work gets PODIUM_SHUTDOWN_GRACE_S, then the server and store close, in time.
        assert pod["terminationGracePeriodSeconds"] >= grace + 15, name
        service = build.one("Service", name)
        assert service["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    for name in ("redis",):
        container = _container(build.one("StatefulSet", name))
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_env_var_the_manifests_set_is_one_the_code_reads(build: Build) -> None:
    source = "\n".join(p.read_text() for top in ("agents", "bus", "registry", "mcp_servers", "podium")
                       for p in (ROOT / top).rglob("*.py"))  # fmt: skip
    config = build.config()
    dynamic = {password_variable(u) for u in [*SERVICE_USERS, *AGENTS]} | {
        f"PODIUM_MCP_{m.upper()}_URL" for m in MCP_SERVERS
    }
    assert "PODIUM_MCP_" in source and "_URL" in source and "PODIUM_REDIS_PASSWORD_" in source
    workloads = [*build.of("Deployment").values(), *build.of("Job").values()]
    # Variables only composed into others ($(VAR) in REDIS_URL, PODIUM_PUBLIC_URL) or read by KEDA.
    composed = set(re.findall(r"\$\((\w+)\)", repr([_container(w).get("env") for w in workloads])))
    composed |= {
        t["metadata"]["addressFromEnv"]
        for s in build.of("ScaledObject").values()
        for t in s["spec"]["triggers"]
    }
    assert {"PODIUM_REDIS_SCHEME", "PODIUM_REDIS_ADDRESS", "PODIUM_ORCHESTRATOR_URL"} <= composed
    for workload in workloads:
        names = set(config) | {e["name"] for e in _container(workload).get("env", [])}
        for name in names - composed - {"HOME"}:
            assert f'"{name}"' in source or name in dynamic, (
                f"{workload['metadata']['name']}: nothing reads {name}"
            )


def test_each_agent_scales_on_its_own_inbox_lag(build: Build) -> None:
    keys = Keys(build.config()["PODIUM_NAMESPACE"])
    concurrency = RuntimeConfig(name="x").concurrency
    for agent, scaled in build.of("ScaledObject").items():
        spec = scaled["spec"]
        assert spec["scaleTargetRef"] == {"name": agent} and agent in build.of("Deployment")
        assert "replicas" not in build.one("Deployment", agent)["spec"]  # KEDA owns the count
        assert spec["minReplicaCount"] == (1 if agent == "orchestrator" else 0)
        lag, pending = spec["triggers"]
        for trigger in (lag, pending):
            meta = trigger["metadata"]
            assert trigger["type"] == "redis-streams"
            assert (meta["stream"], meta["consumerGroup"]) == (keys.inbox(agent), agent)  # bus/keys.py
            assert meta["addressFromEnv"] in build.config() and meta["username"] == agent
            auth = build.one("TriggerAuthentication", trigger["authenticationRef"]["name"])
            (ref,) = auth["spec"]["secretTargetRef"]
            assert (ref["parameter"], ref["name"], ref["key"]) == (
                "password",
                "podium-secrets",
                password_variable(agent),
            )
            assert meta["activationLagCount"] == "0"  # one waiting request wakes an agent at zero
        assert int(lag["metadata"]["lagCount"]) > 0 and "pendingEntriesCount" not in lag["metadata"]
        # lagCount absent: KEDA's pending-entries mode, one replica per --concurrency requests in flight
        assert (
            int(pending["metadata"]["pendingEntriesCount"]) == concurrency
            and "lagCount" not in pending["metadata"]
        )


def test_the_redis_cluster_variant_scales_with_the_cluster_scaler(builds: dict[str, Build]) -> None:
    cluster = builds["redis-cluster"]
    assert cluster.config()["PODIUM_REDIS_SCHEME"] == "redis+cluster"
    for scaled in cluster.of("ScaledObject").values():
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["type"] == "redis-cluster-streams"
            assert (
                "addressFromEnv" not in trigger["metadata"]
                and trigger["metadata"]["addressesFromEnv"] == "PODIUM_REDIS_ADDRESS"
            )
    from podium.bus.connection import connect

    env = env_of(_container(cluster.one("Deployment", "analyst")), cluster.config())
    url = env["REDIS_URL"].replace("<secret:podium-secrets/PODIUM_REDIS_PASSWORD_ANALYST>", "pw")
    client = connect(url)  # a RedisCluster client, not connected yet
    assert type(client).__name__ == "RedisCluster"


def _egress_targets(policies: dict[str, dict[str, Any]], labels: dict[str, str]) -> set[str]:
    """What a pod with ``labels`` may connect to, by the policies that select it: pod names, or 'dns'/'https'."""
    found: set[str] = set()
    for policy in policies.values():
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if not selector.items() <= labels.items() or "Egress" not in policy["spec"]["policyTypes"]:
            continue
        for rule in policy["spec"].get("egress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    found.add("https" if ports == {443} else f"ip:{peer['ipBlock']['cidr']}")
                elif peer["podSelector"].get("matchLabels", {}).get("k8s-app") == "kube-dns":
                    found.add("dns")
                else:
                    found.add(peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"])
    return found


def test_network_policies_let_agents_reach_only_redis_and_the_mcp_servers_they_mount(build: Build) -> None:
    policies = build.of("NetworkPolicy")
    default = policies["default-deny"]["spec"]
    assert default["podSelector"] == {} and set(default["policyTypes"]) == {"Ingress", "Egress"}
    for name, deployment in build.of("Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        reach = _egress_targets(policies, labels)
        if name in AGENTS:
            mounted = {f"mcp-{m.name}" for m in load_config(name).mcp}
            assert reach == {"dns", "redis", "https"} | mounted, name
            for server in mounted:  # and the server takes them in
                allowed = policies[server]["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
                assert allowed.items() <= labels.items()
        elif name == "mcp-blackboard" or name == "registry":
            assert reach == {"dns", "redis"}, name
        else:
            assert reach == {"dns"}, name
    redis_in = policies["redis"]["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {"podium/redis": "client"}}} in redis_in


def test_the_secrets_are_what_podium_acl_wrote(build: Build) -> None:
    secret = build.secret("podium-secrets")
    users = [*SERVICE_USERS, *sorted(AGENTS)]
    assert set(secret) == {password_variable(u) for u in users} | set(TOKENS)
    assert all(secret[k] == build.env[k] for k in secret)  # the env file keeps them across runs
    assert build.secret("podium-redis-acl") == {"users.acl": build.acl}
    # every secret any object refers to exists
    text = repr(build.objects)
    for key in re.findall(
        r"'name': 'podium-secrets', 'key': '(\w+)'|'key': '(\w+)', 'name': 'podium-secrets'", text
    ):
        assert (key[0] or key[1]) in secret
    mounted = build.one("StatefulSet", "redis")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "acl", "secret": {"secretName": "podium-redis-acl", "defaultMode": 0o440}} in mounted


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")
def test_the_statefulset_redis_and_keda_user_calls_on_a_real_redis(build: Build, tmp_path: Path) -> None:
    """The StatefulSet's Redis command with the generated ACL file; then, as each agent's user (the
    ScaledObject's username and TriggerAuthentication password), exactly the calls KEDA's redis-streams
    scaler makes for lagCount and pendingEntriesCount: INFO, XINFO GROUPS, XLEN, XPENDING."""
    acl = tmp_path / "users.acl"
    # plus, for this inspection only, a user that may read the configuration
    acl.write_text(build.secret("podium-redis-acl")["users.acl"] + "user inspector on >inspect ~* +@all\n")
    argv = _container(build.one("StatefulSet", "redis"))["args"]
    assert argv[0] == "redis-server" and argv[argv.index("--maxmemory-policy") + 1] == "noeviction"
    args = [
        str(acl) if a == "/etc/redis/acl/users.acl" else (str(tmp_path) if a == "/data" else a)
        for a in argv[1:]
    ]
    secret = build.secret("podium-secrets")
    server = RedisServer(extra_args=args, auth=("admin", secret["PODIUM_REDIS_PASSWORD_ADMIN"])).start()
    try:
        namespace = build.config()["PODIUM_NAMESPACE"]
        admin = f"redis://admin:{secret['PODIUM_REDIS_PASSWORD_ADMIN']}@127.0.0.1:{server.port}/0"
        done = subprocess.run([sys.executable, "-m", "podium.agents.cli", *_container(build.one("Job", "podium-prepare"))["args"],
                               "--redis-url", admin, "--namespace", namespace], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        for agent, scaled in build.of("ScaledObject").items():
            meta = scaled["spec"]["triggers"][0]["metadata"]
            password = secret[
                build.one("TriggerAuthentication", f"podium-redis-{agent}")["spec"]["secretTargetRef"][0][
                    "key"
                ]
            ]
            keda = redis.Redis(
                port=server.port, username=meta["username"], password=password, decode_responses=True
            )
            try:
                assert int(keda.info()["redis_version"].split(".")[0]) >= 7
                (group,) = keda.xinfo_groups(meta["stream"])
                assert group["name"] == meta["consumerGroup"] and group["lag"] == 0
                assert keda.xlen(meta["stream"]) == 0
                assert keda.xpending(meta["stream"], meta["consumerGroup"])["pending"] == 0
                other = next(a for a in sorted(AGENTS) if a != agent)
                with pytest.raises(redis.exceptions.NoPermissionError):  # another agent's inbox: refused
                    keda.xpending(Keys(namespace).inbox(other), other)
            finally:
                keda.close()
        inspector = redis.Redis(
            port=server.port, username="inspector", password="inspect", decode_responses=True
        )
        try:
            config = inspector.config_get("*")
        finally:
            inspector.close()
    finally:
        server.close()
    assert config["appendonly"] == "yes" and config["maxmemory-policy"] == "noeviction"
    assert int(config["maxmemory"]) > 0 and config["dir"] == str(tmp_path)


def test_the_deploying_commands_of_the_docs_run(tmp_path: Path) -> None:
    """docs/kubernetes.md's first block, as a user runs it from a checkout (here a copy of deploy/)."""
    if KUBECTL is None:
        no_kubectl()
    import os
    import shutil

    from tests.docs import block

    script = block("kubernetes.md", "## Deploying", "bash")
    shutil.copytree(
        ROOT / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("podium-secrets.yaml", "*.env")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "kind: ScaledObject" in (tmp_path / "podium.yaml").read_text()
    assert (tmp_path / "deploy/kubernetes/secrets/podium-secrets.yaml").stat().st_mode & 0o077 == 0


def test_every_agent_reads_the_clients_file_from_the_optional_secret(build: Build) -> None:
    """Outside callers' credentials (`podium clients`) travel as the Secret podium-clients, mounted read-only
    into every agent; optional, so a deployment without per-client tokens still starts."""
    for name, deployment in build.of("Deployment").items():
        if name not in AGENTS:
            continue
        pod = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        env = env_of(container, build.config())
        assert env["PODIUM_CLIENTS_FILE"] == "/etc/podium/clients/clients.json", name
        (volume,) = [v for v in pod["volumes"] if v["name"] == "clients"]
        assert volume["secret"]["secretName"] == "podium-clients" and volume["secret"]["optional"] is True
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "clients"]
        assert mount["mountPath"] == "/etc/podium/clients" and mount["readOnly"] is True
