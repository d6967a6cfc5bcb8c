"""Approving in the console, in headless Chromium (Playwright): the orchestrator is configured so that the
analyst's skill (tagged ``math``) needs approval; a task waiting in input-required shows what it asks with
Approve / Reject / Edit, which answer on the task as ``podium ask`` does. Real ``podium console``, real
orchestrator and analyst processes on the test's redis-server."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.agents.console.test_console_browser import CHROMIUM, shot
from tests.agents.orchestrator.cluster import Cluster
from tests.support import Proc, RedisServer, free_port, wait_until

TOKEN = "console-approval-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def system(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster = Cluster(
        redis_server.url,
        f"t{uuid.uuid4().hex[:12]}",
        tmp_path_factory.mktemp("approval"),
        orchestrator={"approval": {"tags": ["math"], "timeoutS": 600}},
    )
    console = None
    try:
        # The agents bind ephemeral ports first: a port picked for the console before they start could be
        # handed to one of them.
        cluster.start("analyst", "orchestrator")
        port = free_port()
        console = Proc.podium(
            "console", "--redis-url", redis_server.url, "--namespace", cluster.namespace, "--port", str(port),
            env={"PODIUM_CONSOLE_TOKEN": TOKEN},
        )  # fmt: skip
        wait_until(lambda: "podium console ready" in console.output() or not console.alive(), timeout=30,
                   what="the console")  # fmt: skip
        assert console.alive(), console.output()
        yield {"cluster": cluster, "url": f"http://127.0.0.1:{port}"}
    finally:
        if console is not None:
            console.close()
        cluster.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():  # never a skip: an untested console is not tested
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
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{system['url']}/#token={TOKEN}")
    yield page
    context.close()
    assert not errors, errors


def _ask_in_the_console(page: Any, question: str) -> str:
    page.click("a[data-view='ask']")
    page.fill("textarea[data-testid='question']", question)
    page.click("button[data-testid='ask']")
    page.locator("[data-testid='task-state']", has_text="input-required").wait_for()
    return page.locator("h2 code").first.inner_text()


def _answer_text(page: Any) -> str:
    return page.locator("[data-testid='answer']").inner_text()


def test_approve_and_edit_from_the_page(page: Any, system: dict[str, Any], tmp_path: Path) -> None:
    _ask_in_the_console(page, "What is 15% of 240?")
    box = page.locator("[data-testid='approval']")
    assert "Approval needed" in box.inner_text()
    asks = page.locator("[data-testid='asks']").inner_text()
    assert "calculate" in asks and "needing approval" in asks and "15% of 240" in asks, asks
    shot(page, tmp_path, "approval")
    page.click("button[data-testid='approve']")
    page.locator("[data-testid='task-state']", has_text="completed").wait_for()
    assert re.search(r"15% of 240 (=|is) 36\b", _answer_text(page)), _answer_text(page)
    assert box.is_hidden()

    # Edit: the new instruction replaces the step's, and is what the analyst computes
    _ask_in_the_console(page, "What is 15% of 240?")
    page.click("button[data-testid='edit']")
    assert page.locator("textarea[data-testid='approval-instruction']").input_value() == "What is 15% of 240?"
    page.fill("textarea[data-testid='approval-instruction']", "What is 7 times 6?")
    page.click("button[data-testid='send-edit']")
    page.locator("[data-testid='task-state']", has_text="completed").wait_for()
    assert re.search(r"\b42\b", _answer_text(page)), _answer_text(page)
    page.click("summary:has-text('Trace')")
    assert "new instruction 'What is 7 times 6?'" in page.locator("ol.trace").inner_text()
    shot(page, tmp_path, "edited")


def test_reject_a_task_that_podium_ask_left_waiting(
    page: Any, system: dict[str, Any], tmp_path: Path
) -> None:
    cluster: Cluster = system["cluster"]
    ask = Proc.podium("ask", "--url", cluster.orchestrator_url, "--json", "What is 2 + 3?")
    try:
        assert ask.proc.wait(120) == 1  # no terminal to answer on: it leaves the task waiting
        out = ask.output()
    finally:
        ask.close()
    task_id = re.search(r"task ([0-9a-f-]{36})", out).group(1)
    page.goto(f"{system['url']}/#/task/{task_id}")
    page.locator("[data-testid='task-state']", has_text="input-required").wait_for()
    page.click("button[data-testid='reject']")
    page.locator("[data-testid='task-state']", has_text=re.compile("canceled|failed|completed")).wait_for()
    state = page.locator("[data-testid='task-state']").inner_text()
    assert state in ("canceled", "failed", "completed"), state
    assert page.locator("[data-testid='approval']").is_hidden()
    page.click("summary:has-text('Trace')")
    assert (
        "approval" in page.locator("ol.trace").inner_text()
        and "reject" in page.locator("ol.trace").inner_text()
    )
    shot(page, tmp_path, "rejected")


def test_the_answer_api_needs_the_token_and_a_waiting_task(system: dict[str, Any]) -> None:
    url, task = system["url"], "00000000-0000-0000-0000-000000000000"
    answer = f"{url}/api/tasks/{task}/answer"
    assert httpx.post(answer, json={"decision": "approve"}, timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.post(answer, json={"decision": "maybe"}, headers=auth, timeout=10)
    assert bad.status_code == 400 and "approve, reject, edit" in bad.json()["error"]["message"]
    empty = httpx.post(answer, json={"decision": "edit", "instruction": " "}, headers=auth, timeout=10)
    assert empty.status_code == 400 and "new instruction" in empty.json()["error"]["message"]
    assert httpx.post(answer, json={"decision": "approve"}, headers=auth, timeout=10).status_code == 404
    done = Proc.podium(
        "ask", "--url", system["cluster"].orchestrator_url, "--json", "--approve", "What is 1 + 1?"
    )
    try:
        assert done.proc.wait(120) == 0, done.output()
        finished = json.loads(done.output()[done.output().index("{") :])["id"]
    finally:
        done.close()
    late = httpx.post(
        f"{url}/api/tasks/{finished}/answer", json={"decision": "approve"}, headers=auth, timeout=10
    )
    assert late.status_code == 409 and "not waiting for an approval" in late.json()["error"]["message"], (
        late.text
    )


def test_an_outside_agent_is_shown_as_outside_with_its_health(page: Any, system: dict[str, Any]) -> None:
    from podium.registry.store import Registry
    from tests.agents.console.test_console_browser import redis_call
    from tests.agents.wordsmith import card

    cluster: Cluster = system["cluster"]
    outside = card("http://127.0.0.1:9")  # the bare a2a-sdk agent's card; nothing listens there

    async def add(redis: Any, keys: Any) -> None:
        registry = Registry(redis, keys)
        await registry.register_static(outside, url="http://127.0.0.1:9/.well-known/agent-card.json")
        await registry.record_health("wordsmith", False, "127.0.0.1:9: connection refused")

    redis_call(cluster.redis_url, cluster.namespace, add)
    cell = page.locator("tr[data-agent='wordsmith'] td[data-field='alive']")
    cell.wait_for()
    assert cell.inner_text() == "outside (down: 127.0.0.1:9: connection refused)"
    assert page.locator("tr[data-agent='wordsmith'] td[data-field='consumers']").inner_text() == "-"
