"""Who a reply goes to, and who the policy counts as a known contact, on every channel.

A forged sender header (``From: "jane@example.com" <t12@example.com>, attacker@evil.example``) must
not produce a draft to a mangled or a second address; Reply-To is honoured when it names one
address; the owner is shown exactly who receives a message; and each channel compares its own
kind of name (an email address, a phone number, a person's name) with the handbook's contacts.
"""
from __future__ import annotations

import pytest

from core.approval.policy import ActionInfo, policy_from_markdown
from core.config import Settings
from core.documents import Document
from core.engine.planning import PlanContext, RuleBasedPlanner, task_fields
from core.engine.plans import FAILED, WAITING
from core.engine.workflow import Workflow
from core.tasks import Task, write_new_task
from core.vault import Vault
from mcp_servers.gmail.intake import email_task
from tests.conftest import ROOT, md_files

FORGED = '"jane@example.com" <t12@example.com>, attacker@evil.example'


def email(tmp_path, sender: str, reply_to: str = "") -> Task:
    vault = Vault(tmp_path / "vault")
    vault.ensure_layout()
    msg = {"id": "18c1", "thread_id": "18c1", "from": sender, "reply_to": reply_to, "subject": "Invoice",
           "labels": ["INBOX"], "body_text": "Please send it.", "message_id_header": "<m1@example.com>"}
    return Task.load(write_new_task(vault, email_task("20261201T000000Z-email-0123456789", msg)))


@pytest.mark.parametrize("sender, reply_to, expected", [
    ("Jane Doe <jane@example.com>", "", "jane@example.com"),
    ("Jane Doe <jane@example.com>", "Billing <billing@example.com>", "billing@example.com"),
    (FORGED, "", ""),                                     # two senders: nobody is guessed
    ("Jane Doe <jane@example.com>", "a@example.com, b@example.com", ""),
    ("not an address", "", ""),
])
def test_a_reply_goes_to_the_single_reply_to_or_sender_and_never_to_a_guess(tmp_path, sender, reply_to, expected):
    task = email(tmp_path, sender, reply_to)
    assert task.meta["reply_to"] == expected and task_fields(task)["reply_to"] == expected
    assert ("A reply goes to:** " + expected if expected else "nobody yet") in task.doc.body


def workflow(tmp_path) -> Workflow:
    settings = Settings.from_env({"VAULT_PATH": str(tmp_path / "vault"), "SKILLS_DIR": str(ROOT / ".qwen" / "skills")})
    (tmp_path / "vault").mkdir(exist_ok=True)
    return Workflow.open(settings, actor="test")


def test_the_forged_sender_gets_no_draft_and_the_owner_is_told_why(tmp_path):
    task = email(tmp_path, FORGED)
    wf = workflow(tmp_path)  # the shipped handbook: every email gets a drafted reply to {reply_to}
    proposed = RuleBasedPlanner().plan(task, [], PlanContext(wf.registry, wf.policy.current()))
    assert proposed[0].params["to"] == ""
    [step] = wf.plans.add_steps(task.id, "rule_based", proposed)
    wf.act(task, step)
    [step] = wf.plans.steps(task.id)
    assert step.status == FAILED and "to" in step.error
    assert md_files(wf.vault.root / "Pending_Approval") == []


def test_the_request_says_exactly_who_receives_the_message(tmp_path):
    task = email(tmp_path, "Jane Doe <jane@example.com>", "billing@example.com")
    wf = workflow(tmp_path)
    proposed = RuleBasedPlanner().plan(task, [], PlanContext(wf.registry, wf.policy.current()))
    [step] = wf.plans.add_steps(task.id, "rule_based", proposed)
    wf.act(task, step)
    assert wf.plans.steps(task.id)[0].status == WAITING
    [request] = md_files(wf.vault.root / "Pending_Approval")
    doc = Document.parse(request.read_text("utf-8"))
    assert doc.meta["params"]["to"] == "billing@example.com"
    assert "**Who receives it:** to: billing@example.com" in doc.body


HANDBOOK = """```yaml
policy:
  auto_approve:
    - {rule: known, skill: "*", known_contacts_only: true}
  known_contacts: ["Jane Doe <jane@example.com>", "+44 7700 900123", "Bob Smith", "@acme"]
```
"""


@pytest.mark.parametrize("kind, value, auto", [
    ("email", "JANE@example.com", True),
    ("email", "Jane Doe <jane@example.com>, stranger@example.com", False),
    ("email", "Jane Doe", False),                       # a name is not an address
    ("email", 'jane@example.com, "a b"@evil.example', False),   # a quoted stranger still counts
    ("email", "jane@example.com; x@evil.example", False),        # part of it unreadable: fail closed
    ("email", "jane@example.com x@evil.example", False),
    ("phone", "+44 7700 900123", True),
    ("phone", "+447700900123", True),
    ("phone", "+44 7700 900999", False),
    ("chat", "+44 (7700) 900-123", True),               # a WhatsApp chat named by its number...
    ("chat", "bob  smith", True),                       # ...or by the contact's name
    ("chat", "Bob", False),                             # not "+44" or "Jane": no partial names
    ("name", "jane doe", True),                         # the name of "Jane Doe <jane@example.com>"
    ("handle", "@ACME", True),
])
def test_known_contacts_are_read_the_way_each_channel_names_its_recipients(kind, value, auto):
    policy = policy_from_markdown(HANDBOOK)
    info = ActionInfo("s", "a", read_only=False, channel="message", recipient_params=("to",), recipient_kind=kind)
    assert policy.decide(info, {"to": value}).auto is auto
