"""The reasoning loop's workers take turns computing, and hand the turn on while one waits on the
world outside (a server behind an auto-approved action, a model planning): a slow task never
holds up the others."""
from __future__ import annotations

import threading

import pytest

from core.config import Settings
from core.locks import stripe_of
from core.engine.plans import ProposedStep
from core.engine.skills import Skill, SkillRegistry
from core.tasks import build_task, write_new_task
from core.engine.workflow import Workflow
from reasoning_loop import ReasoningLoop

HANDBOOK = """```yaml
policy:
  auto_approve:
    - {rule: test, skill: turn_skill, action: send}
    - {rule: test-local, skill: turn_skill, action: file}
```
"""
WAIT = 20.0  # a generous bound: the check is that the fast task finishes while the slow one waits


class Gate:
    """Holds a slow call until released, and says when the call has started."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def hold(self) -> None:
        self.entered.set()
        assert self.release.wait(WAIT), "the slow call was never released"


class TitlePlanner:
    """Plans one step from the task's title: "slow …" sends (waits on a server), anything else files."""

    name = "title"

    def __init__(self, gate: Gate | None, waits: bool) -> None:
        self.gate, self.waits = gate, waits

    def plan(self, task, history, ctx):
        if history:
            return []
        if task.title.startswith("slow") and self.gate is not None:
            self.gate.hold()
        action = "send" if task.title.startswith("slow") else "file"
        return [ProposedStep("turn_skill", action, {"note": task.title}, title=task.title)]


def make_registry(gate: Gate | None) -> SkillRegistry:
    skill = Skill("turn_skill")
    schema = {"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}}

    @skill.action(schema=schema, channel="email")
    def send(params, ctx):
        if gate is not None:
            gate.hold()
        return {"sent": params["note"]}

    @skill.action(schema=schema, channel="local")
    def file(params, ctx):
        return {"filed": params["note"]}

    registry = SkillRegistry()
    registry.register(skill)
    return registry


def claimed_task(loop: ReasoningLoop, title: str, n: int):
    doc = build_task(f"20261124T000000Z-test-{n:010d}", "test", "test", f"src-{n}", title=title, content="x")
    path = write_new_task(loop.wf.vault, doc)
    return loop.wf.vault.claim(path, loop.mine)


@pytest.mark.parametrize("slow_part", ["skill", "planner"])
def test_a_task_waiting_outside_does_not_hold_up_the_others(tmp_path, slow_part):
    settings = Settings.from_env({"VAULT_PATH": str(tmp_path / "vault"), "SKILLS_DIR": str(tmp_path / "none"),
                                  "DRY_RUN": "false"})
    gate = Gate()
    registry = make_registry(gate if slow_part == "skill" else None)
    wf = Workflow.open(settings, actor="reasoning_loop", registry=registry)
    (wf.vault.root / "Company_Handbook.md").write_text(HANDBOOK)
    planner = TitlePlanner(gate if slow_part == "planner" else None, waits=slow_part == "planner")
    loop = ReasoningLoop(settings, planner=planner, wf=wf)
    loop.mine.mkdir(parents=True, exist_ok=True)
    slow, fast = claimed_task(loop, "slow reply", 1), claimed_task(loop, "fast filing", 2)
    assert stripe_of(slow.stem) != stripe_of(fast.stem)  # else the per-task lock, not the turn, would block

    slow_worker = threading.Thread(target=loop.work_on, args=(slow,))
    slow_worker.start()
    assert gate.entered.wait(WAIT)
    fast_worker = threading.Thread(target=loop.work_on, args=(fast,))
    fast_worker.start()
    fast_worker.join(WAIT)
    try:
        assert not fast_worker.is_alive(), "the fast task waited for the slow one"
        assert (wf.vault.folder("Completed") / fast.name).exists()
        assert not (wf.vault.folder("Completed") / slow.name).exists()
    finally:
        gate.release.set()
        slow_worker.join(WAIT)
        fast_worker.join(WAIT)
    assert (wf.vault.folder("Completed") / slow.name).exists()
