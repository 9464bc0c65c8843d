"""The agent interface's sweeps, in process: queued writes asked about again, and copies of
requests that expired or were approved already."""
from __future__ import annotations

import shutil
import time

import pytest

from agent_interface import AgentInterface
from core.approval.approvals import Approvals, Refused
from core.config import Settings
from core.engine.plans import FAILED, QUEUED, ProposedStep
from core.tasks import build_task, write_new_task
from tests.conftest import make_env, md_files


@pytest.fixture
def agent(tmp_path):
    env = make_env(tmp_path)
    return AgentInterface(Settings.from_env(env, load_dotenv_file=False))


def queued_step(agent, action: str = "unreachable") -> tuple[str, int]:
    wf = agent.wf
    doc = build_task("20261201T000000Z-file_drop-0123456789", "file_drop", "filesystem", "x", title="t", content="c")
    path = write_new_task(wf.vault, doc)
    [step] = wf.plans.add_steps(doc.meta["id"], "rule_based", [ProposedStep("test_skill", action, {"note": "n"}, "s")])
    grant = wf.approvals.grant_by_policy(task_id=step.task_id, step_no=step.no, skill="test_skill", action=action,
                                         params={"note": "n"}, rule="test")
    wf.plans.update_step(step.task_id, step.no, status=QUEUED, error="queued: 503", due=time.time() - 1)
    assert path.exists() and grant
    return step.task_id, step.no


def test_a_queued_write_whose_server_is_down_is_asked_about_later_not_failed(agent):
    task_id, no = queued_step(agent)
    agent.retry_due()
    [step] = agent.wf.plans.steps(task_id)
    assert step.status == QUEUED and step.due > time.time() + 30 and "unreachable" in step.error
    assert agent.wf.plans.queued_due() == []  # not asked again before its time


def test_a_queued_step_whose_approval_ended_is_closed_not_swept_forever(agent):
    task_id, no = queued_step(agent)
    row = agent.wf.approvals.for_step(task_id, no)
    agent.wf.approvals.set_status(row["id"], "rejected")
    agent.retry_due()
    [step] = agent.wf.plans.steps(task_id)
    assert step.status == FAILED and "rejected" in step.error
    assert agent.wf.plans.queued_due() == []


def request(agent, ttl: float = 24.0) -> dict:
    approvals = Approvals(agent.wf.vault, agent.wf.state, ttl_hours=ttl)
    return approvals.request(task_id="20261201T000000Z-file_drop-0123456789", step_no=1, skill="test_skill",
                             action="record", params={"note": "n"}, text_param=None, risk="medium", reason="r",
                             subject="copy")


def test_refusing_an_expired_copy_retires_the_pending_original_too(agent):
    row = request(agent, ttl=1e-9)  # expired by the time it is approved
    pending = agent.wf.vault.root / "Pending_Approval" / row["file_name"]
    copy = agent.wf.vault.root / "Approved" / row["file_name"]
    shutil.copy2(pending, copy)
    agent.take_approved(copy)
    assert md_files(agent.wf.vault.root / "Pending_Approval") == []
    retired = agent.wf.vault.root / "Rejected" / f"{row['file_name'][:-3]}.expired.md"
    assert retired.exists() and "status: expired" in retired.read_text("utf-8")


def test_a_renamed_copy_of_an_approval_already_under_way_is_refused(agent):
    row = request(agent)
    pending = agent.wf.vault.root / "Pending_Approval" / row["file_name"]
    renamed = agent.wf.vault.root / "In_Progress" / "executor" / "a copy.md"
    renamed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(pending, renamed)
    agent.wf.approvals.accept(pending)  # the original: approved (and, say, queued by its server)
    with pytest.raises(Refused, match="already used") as why:
        agent.wf.approvals.accept(renamed)
    assert why.value.kind == "spent"
