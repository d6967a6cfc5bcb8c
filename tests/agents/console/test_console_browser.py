"""The console in a real browser: headless Chromium from the system's packages, driven by Playwright,
against a real ``podium console`` process and real agent processes (the orchestrator and the analyst)
on the test's redis-server. One cluster and one browser serve every check in this module. Each test
saves a screenshot under its temporary folder and prints where.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from google.protobuf.json_format import MessageToDict

from podium.agents.orchestrator.state.breakers import Breakers
from podium.agents.orchestrator.state.trace import read_trace
from podium.bus.connection import connect
from podium.bus.envelope import Envelope
from podium.bus.keys import Keys
from podium.bus.streams import StreamBus
from tests.agents.agent_procs import text_request
from tests.agents.orchestrator.cluster import Cluster
from tests.support import Proc, RedisServer, free_port, wait_until

CHROMIUM = "/usr/bin/chromium"
TOKEN = "console-test-" + uuid.uuid4().hex
# Two independent computations: the offline planner runs them as parallel sections, then joins them.
PARALLEL_QUESTION = "What is 15% of 240? And also, what is 12% of 50?"


@pytest.fixture(scope="module")
def system(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster = Cluster(redis_server.url, f"t{uuid.uuid4().hex[:12]}", tmp_path_factory.mktemp("console"))
    console = None
    try:
        cluster.start(
            "analyst", "orchestrator"
        )  # the agents' ephemeral ports first (see test_console_approval)
        port = free_port()
        console = Proc.podium(
            "console", "--redis-url", redis_server.url, "--namespace", cluster.namespace, "--port", str(port),
            env={"PODIUM_CONSOLE_TOKEN": TOKEN},
        )  # fmt: skip
        wait_until(lambda: "podium console ready" in console.output() or not console.alive(), timeout=30,
                   what="the console")  # fmt: skip
        assert console.alive(), console.output()
        yield {"cluster": cluster, "url": f"http://127.0.0.1:{port}", "console": console}
    finally:
        if console is not None:
            console.close()
        cluster.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):  # never a skip: a console nobody looked at is not tested
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, system: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)  # CSP violations too
    page.goto(f"{system['url']}/#token={TOKEN}")
    yield page
    context.close()
    assert not errors, errors


def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def redis_call(url: str, namespace: str, fn: Any) -> Any:
    """Run ``fn(redis, keys)`` on a loop of its own thread: Playwright's sync API owns this thread's loop."""

    async def go() -> Any:
        redis = connect(url)
        try:
            return await fn(redis, Keys(namespace))
        finally:
            await redis.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, go).result()


def test_agents_are_listed_with_their_live_figures(page: Any, system: dict[str, Any], tmp_path: Path) -> None:
    cluster: Cluster = system["cluster"]

    async def consumers(redis: Any, keys: Keys) -> dict[str, int]:
        out = {}
        for name in ("analyst", "orchestrator"):
            groups = await redis.xinfo_groups(keys.inbox(name))
            out[name] = sum(g["consumers"] for g in groups if g["name"] == name.encode())
        return out

    for name in ("analyst", "orchestrator"):
        row = page.locator(f"tr[data-agent='{name}']")
        row.wait_for()
        assert row.locator("td[data-field='alive']").inner_text() == "1"
        assert row.locator("td[data-field='heartbeat']").inner_text().endswith("s ago")
        assert "redis-streams" in row.locator("td[data-field='bindings']").inner_text()
    expected = redis_call(cluster.redis_url, cluster.namespace, consumers)
    for name, n in expected.items():
        page.locator(f"tr[data-agent='{name}'] td[data-field='consumers']", has_text=str(n)).wait_for()
    skills = page.locator("tr[data-agent='analyst'] td[data-field='skills']").inner_text()
    assert "calculate" in skills
    # The figures are live: a breaker that opens shows without a reload, and so does its closing.
    breaker = page.locator("tr[data-agent='analyst'] td[data-field='breaker']")
    assert breaker.inner_text().startswith("closed")
    redis_call(
        cluster.redis_url, cluster.namespace, lambda r, k: Breakers(r, k, threshold=1).failure("analyst")
    )
    page.locator("tr[data-agent='analyst'] td[data-field='breaker'] .pill.open").wait_for()
    shot(page, tmp_path, "agents")
    redis_call(cluster.redis_url, cluster.namespace, lambda r, k: Breakers(r, k).success("analyst"))
    page.locator("tr[data-agent='analyst'] td[data-field='breaker'] .pill.closed").wait_for()


def test_ask_shows_the_plan_live_and_the_timeline_overlaps_parallel_steps(
    page: Any, system: dict[str, Any], tmp_path: Path
) -> None:
    cluster: Cluster = system["cluster"]
    page.click("a[data-view='ask']")
    page.fill("textarea[data-testid='question']", PARALLEL_QUESTION)
    page.click("button[data-testid='ask']")
    nodes = page.locator("g.node")
    nodes.first.wait_for()
    steps = {"p1-compute", "p2-compute", "sections"}
    assert set(nodes.evaluate_all("ns => ns.map(n => n.dataset.step)")) == steps
    for step in steps:
        page.locator(f"g.node[data-step='{step}'][data-state='completed']").wait_for()
    page.locator("[data-testid='task-state']", has_text="completed").wait_for()
    answer = page.locator("[data-testid='answer-text']").inner_text()
    assert "36" in answer and "6" in answer, answer
    # offline: no model was called, and the answer says what the task spent
    assert page.locator("[data-testid='spend']").inner_text() == "Spend $0.0000 · 0 tokens (no model calls)"
    shot(page, tmp_path, "ask")

    task_id = page.locator("h2 code").first.inner_text()
    trace = redis_call(cluster.redis_url, cluster.namespace, lambda r, k: read_trace(r, k, task_id))
    assert trace, "the task the page followed has no trace in Redis"
    page.goto(f"{system['url']}/#/task/{task_id}")
    bars = {s: page.locator(f".bar[data-step='{s}']") for s in steps}
    for bar in bars.values():
        bar.wait_for()
    box = {s: bar.bounding_box() for s, bar in bars.items()}
    # On screen the parallel sections overlap: each bar starts before the other ends ...
    a, b = box["p1-compute"], box["p2-compute"]
    assert a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"], (a, b)
    # ... and the join starts only after both.
    assert box["sections"]["x"] + 0.5 >= max(a["x"] + a["width"], b["x"] + b["width"]) - 1, box
    # The bars are the trace's own times.
    started = {e.step: e.ts for e in trace if e.event == "step" and e.state == "started"}
    for s in steps:
        assert float(bars[s].get_attribute("data-start")) == pytest.approx(started[s], abs=1e-3)
    page.click("summary:has-text('Raw A2A task JSON')")
    assert json.loads(page.locator("[data-testid='raw']").inner_text())["id"] == task_id
    shot(page, tmp_path, "timeline")

    # The task list shows it, and filters by agent without a reload.
    page.click("a[data-view='tasks']")
    page.locator(f"tr[data-task='{task_id}'] td[data-field='state']", has_text="completed").wait_for()
    assert page.locator(f"tr[data-task='{task_id}'] td[data-field='agent']").inner_text() == "orchestrator"
    page.select_option("select[data-testid='agent-filter']", "analyst")
    agents = page.locator("tr[data-task] td[data-field='agent']").all_inner_texts()
    assert agents and set(agents) == {"analyst"}, agents
    shot(page, tmp_path, "tasks")


def test_a_dead_letter_is_replayed_from_the_page(page: Any, system: dict[str, Any], tmp_path: Path) -> None:
    cluster: Cluster = system["cluster"]
    reply_to = Keys(cluster.namespace).reply(f"console-test-{uuid.uuid4().hex[:6]}")
    env = Envelope(
        method="SendMessage", payload=MessageToDict(text_request("What is 7 times 6?")), sender="test",
        reply_to=reply_to, deadline=time.time() + 120,
    )  # fmt: skip

    async def bury(redis: Any, keys: Keys) -> str:
        bus = StreamBus(redis, keys)
        return await bus.dead_letter(
            "analyst", "0-1", env.encode(), "RuntimeError: the handler crashed", 3, "analyst-x"
        )

    letter_id = redis_call(cluster.redis_url, cluster.namespace, bury)
    page.click("a[data-view='dlq']")
    row = page.locator(f"tr[data-letter='{letter_id}']")
    row.wait_for()
    assert "the handler crashed" in row.locator("td[data-field='error']").inner_text()
    shot(page, tmp_path, "dead-letters")
    row.locator("button", has_text="Replay").click()
    page.locator("[data-testid='dlq-empty']").wait_for()  # the list follows the DLQ live

    async def replies(redis: Any, keys: Keys) -> list[Envelope]:
        return [Envelope.decode(f[b"e"]) for _, f in await redis.xrange(reply_to)]

    wait_until(
        lambda: any(r.correlation_id == env.id for r in redis_call(cluster.redis_url, cluster.namespace, replies)),
        timeout=30, what="analyst to answer the replayed request",
    )  # fmt: skip
    assert redis_call(cluster.redis_url, cluster.namespace, lambda r, k: r.xlen(k.dlq("analyst"))) == 0
    shot(page, tmp_path, "replayed")


def test_without_the_token_the_page_is_refused(browser: Any, system: dict[str, Any], tmp_path: Path) -> None:
    url = system["url"]
    for token in ("", "not-" + TOKEN):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/#token={token}" if token else url)
        page.locator("[data-testid='refused']").wait_for()
        assert page.locator("tr[data-agent]").count() == 0
        assert page.locator("#token-form").is_visible()
        shot(page, tmp_path, f"refused-{'wrong' if token else 'none'}")
        if token:  # the page asks for the token; given the right one, it opens
            page.fill("#token-input", TOKEN)
            page.click("#token-form button")
            page.locator("tr[data-agent='analyst']").wait_for()
        context.close()
    # Every API route and feed wants the header; with it, bad input is named.
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
        for method, path in [("GET", "/api/agents"), ("GET", "/api/events/agents"), ("GET", "/api/tasks/x"),
                             ("POST", "/api/ask"), ("POST", "/api/dlq/analyst/replay")]:  # fmt: skip
            assert http.request(method, path).status_code == 401, path
            assert http.request(method, path, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.get("/api/agents", headers={**bearer, "Host": "attacker.example"}).status_code == 403
        response = http.post("/api/ask", headers=bearer, json={"question": "hi"})
        assert response.status_code == 400 and "text" in response.json()["error"]["message"]
        assert http.get("/api/agents", headers=bearer).status_code == 200
