"""Named workflows as data: the guide's example files parse and validate; a workflow that does not is
refused naming the file and the step; inputs are substituted; a request's text picks a workflow by name
or example; the orchestrator's card offers each as a skill; ``podium workflow add|list|remove`` keeps
them in the folder (embedded mode) and in Redis."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from a2a.types import AgentCard, AgentSkill

from podium.agents.orchestrator.plan import LoopStep, TaskStep, VoteStep
from podium.agents.orchestrator.workflows import (
    WorkflowError,
    WorkflowStore,
    check,
    load_file,
    match,
    offer,
    parse_workflow,
    render,
)
from podium.bus.keys import Keys
from tests.support import ROOT, Proc, free_port

pytestmark = pytest.mark.anyio

EXAMPLES = ROOT / "docs" / "examples" / "workflows"
SKILLS = {"research", "calculate", "write", "revise", "review", "echo"}


def _workflow(**plan_step: object) -> dict:
    return {
        "name": "w",
        "description": "a test workflow",
        "inputs": [{"name": "topic"}],
        "plan": {"steps": [{"id": "one", "call": {"skill": "echo", "text": "{{topic}}"}, **plan_step}]},
    }


def test_the_guides_examples_parse_and_validate_against_the_built_in_skills() -> None:
    found = {p.stem: load_file(p) for p in sorted(EXAMPLES.glob("*.yaml"))}
    assert set(found) == {"doc-brief", "checked-sum", "reviewed-answer"}
    brief = check(found["doc-brief"], SKILLS)
    assert [type(s) for s in brief.steps] == [TaskStep, TaskStep] and brief.steps[0].gate.check == "covered"
    assert isinstance(check(found["checked-sum"], SKILLS).steps[0], VoteStep)
    assert isinstance(check(found["reviewed-answer"], SKILLS).steps[1], LoopStep)


def test_inputs_are_substituted_and_a_lone_missing_one_takes_the_request_text() -> None:
    wf = load_file(EXAMPLES / "reviewed-answer.yaml")
    plan = render(wf, {"question": "How does the with statement work?", "rounds": 2})
    loop = plan.step("answer")
    assert isinstance(loop, LoopStep) and loop.max_rounds == 2  # a whole-string slot keeps its type
    assert loop.evaluator.data == {"question": "How does the with statement work?"}
    assert plan.planner == "workflow reviewed-answer"
    assert render(wf, {}, "What is yield?").step("notes").call.text == "What is yield?"
    assert render(wf, {}, "What is yield?").step("answer").max_rounds == 3  # the slot's default
    with pytest.raises(WorkflowError, match=r"needs input\(s\) question"):
        render(wf, {})
    with pytest.raises(WorkflowError, match="has no input"):
        render(wf, {"question": "q", "colour": "red"})


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (_workflow(pattern="teleport"), "step 'one': unknown pattern"),
        ({**_workflow(), "name": "Bad Name"}, "name: Value error, 'Bad Name': a workflow name"),
        ({**_workflow(), "description": ""}, "description"),
        (
            {
                **_workflow(),
                "plan": {"steps": [{"id": "one", "call": {"skill": "echo", "text": "{{nope}}"}}]},
            },
            "uses {{nope}}, which is not one of its inputs",
        ),
    ],
)
def test_a_workflow_that_does_not_parse_is_refused_naming_the_field(data: dict, named: str) -> None:
    with pytest.raises(WorkflowError) as info:
        parse_workflow(data, "my.yaml")
    assert info.value.message.startswith("my.yaml: ") and named in info.value.message, info.value.message


def test_a_workflow_calling_a_skill_nobody_offers_is_refused_naming_the_step() -> None:
    wf = parse_workflow(_workflow())
    bad = parse_workflow(
        {**_workflow(), "plan": {"steps": [{"id": "astro", "call": {"skill": "astrology"}}]}}
    )
    check(wf, SKILLS)
    with pytest.raises(WorkflowError, match=r"f\.yaml: step 'astro': no agent offers skill 'astrology'"):
        check(bad, SKILLS, source="f.yaml")


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(WorkflowError, match=r"broken.yaml: not valid YAML"):
        load_file(path)


def test_a_request_picks_a_workflow_by_its_name_or_an_example() -> None:
    brief, total = load_file(EXAMPLES / "doc-brief.yaml"), load_file(EXAMPLES / "checked-sum.yaml")
    assert match("please run the checked-sum workflow", [brief, total]) == (total, {})
    # an example with a slot takes the slot's value from the question
    assert match("Write a  doc brief on the yield expression.", [brief, total]) == (
        brief,
        {"topic": "the yield expression"},
    )
    assert match("What is 15% of 240?", [brief, total]) is None
    total.examples = ["double-check a sum"]  # without slots: most of an example's key words
    assert match("could you double-check this sum for me", [brief, total]) == (total, {})


def test_the_card_offers_each_workflow_as_a_skill_and_drops_removed_ones() -> None:
    card = AgentCard(name="orchestrator", skills=[AgentSkill(id="orchestrate", name="o")])
    workflows = {w.name: w for w in (load_file(p) for p in EXAMPLES.glob("*.yaml"))}
    assert offer(card, workflows) and not offer(card, workflows)
    ids = [s.id for s in card.skills]
    assert ids == ["orchestrate", "workflow.checked-sum", "workflow.doc-brief", "workflow.reviewed-answer"]
    assert "inputs: expression" in card.skills[1].description and "workflow" in card.skills[1].tags
    assert offer(card, {"doc-brief": workflows["doc-brief"]})
    assert [s.id for s in card.skills] == ["orchestrate", "workflow.doc-brief"]


async def test_the_store_reads_redis_over_the_folder(redis, keys: Keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "wf"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({**_workflow(), "name": "a"}))
    (folder / "broken.yaml").write_text(": :")
    store = WorkflowStore(redis, keys, folder)
    assert list(await store.all()) == ["a"]
    assert len(store.problems) == 1 and "broken.yaml" in store.problems[0]  # skipped, said in one line
    await store.add(parse_workflow({**_workflow(), "name": "a", "description": "from Redis"}))
    assert (await store.get("a")).description == "from Redis"
    assert await store.remove("a") and not await store.remove("a")
    assert (await store.get("a")).description == "a test workflow"


def _podium(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = Proc.podium("workflow", *args, env=env)
    try:
        code = proc.proc.wait(60)
        return code, proc.output()
    finally:
        proc.close()


def test_podium_workflow_add_list_remove_in_the_folder(tmp_path: Path) -> None:
    env = {
        "REDIS_URL": "",
        "PODIUM_WORKFLOWS_DIR": str(tmp_path / "flows"),
        "PODIUM_REGISTRY_URL": f"http://127.0.0.1:{free_port()}",  # no registry: the built-in cards
    }
    code, out = _podium("add", str(EXAMPLES / "checked-sum.yaml"), env=env)
    assert code == 0 and "workflow checked-sum added to" in out and "skill workflow.checked-sum" in out, out
    assert json.loads((tmp_path / "flows" / "checked-sum.json").read_text())["name"] == "checked-sum"
    code, out = _podium("list", env=env)
    assert code == 0 and "checked-sum" in out and "expression" in out, out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ndescription: calls nobody\nplan:\n  steps:\n    - id: stars\n      call: {skill: astrology}\n"
    )
    code, out = _podium("add", str(bad), env=env)
    assert code == 2 and "Traceback" not in out, out
    assert f"{bad}: step 'stars': no agent offers skill 'astrology'" in out, out
    code, out = _podium("add", str(tmp_path / "missing.yaml"), env=env)
    assert code == 2 and "missing.yaml: cannot read it" in out and "Traceback" not in out, out
    code, out = _podium("remove", "checked-sum", env=env)
    assert code == 0 and not os.listdir(tmp_path / "flows"), out
    code, out = _podium("remove", "checked-sum", env=env)
    assert code == 2 and "no workflow named 'checked-sum'" in out, out


async def test_podium_workflow_keeps_workflows_in_redis(redis_url: str, redis, namespace: str) -> None:  # type: ignore[no-untyped-def]
    env = {"REDIS_URL": redis_url, "PODIUM_NAMESPACE": namespace, "PODIUM_WORKFLOWS_DIR": "/nonexistent"}
    code, out = _podium("add", str(EXAMPLES / "doc-brief.yaml"), env=env)
    assert code == 0 and f"Redis (namespace {namespace!r})" in out, out
    stored = json.loads(await redis.hget(f"{namespace}:workflows", "doc-brief"))
    assert stored["plan"]["steps"][0]["id"] == "research"
    code, out = _podium("list", "--json", env=env)
    assert code == 0 and [w["name"] for w in json.loads(out)] == ["doc-brief"], out
    code, out = _podium("remove", "doc-brief", env=env)
    assert code == 0 and await redis.hget(f"{namespace}:workflows", "doc-brief") is None, out
