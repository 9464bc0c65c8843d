"""The owner's gate in front of the MCP servers' write tools (DESIGN §6), backed by the approvals store.

A call passes only with the id of an approval that we issued, that is approved (or already executed:
a replay, which the server answers from its ledger without acting again), for this exact action and
exactly these parameters. Every other call files an ordinary approval request, which reaches the
owner in ``Pending_Approval/`` and, once approved, is executed by the agent interface through the
bound skill. So no client, however it reached a server, gets around the owner.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.approval.approvals import APPROVED, EXECUTED, PENDING, Approvals, Grant, grant_from_row
from core.audit import AuditLog
from core.errors import ApprovalRequiredError, ConfigError
from core.state import StateStore, canonical, dumps, loads

REASON = "requested by an MCP client; needs your approval"
TASK_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[a-z0-9_]+-[0-9a-f]{10}")


@dataclass(frozen=True)
class SkillBinding:
    """The skill that executes a server's write action once the owner approves it."""
    skill: str
    text_param: str | None = None       # shown as the editable "## Message" of the request
    html_param: str | None = None       # an HTML rendering of that text: an owner's edit replaces it
    aliases: tuple[str, ...] = ()       # other actions of that skill whose grants cover this write
                                        # (gmail_skill.reply is a send_email with threading)


def ledger_key(service: str, grant_key: str) -> str:
    """The ledger row a server keeps for one grant's write: the one replay key convention."""
    return f"{service}:{grant_key}"


class StateApprovalGate:
    def __init__(self, approvals: Approvals, state: StateStore, skill_map: Mapping[str, SkillBinding], *,
                 audit: AuditLog | None = None, precheck: Callable[[], object] | None = None) -> None:
        self.approvals = approvals
        self.state = state
        self.skill_map = dict(skill_map)
        self.audit = audit
        self.precheck = precheck  # raises when the server cannot act at all (e.g. NotConfiguredError)

    def authorize(self, *, service: str, action: str, params: dict, grant_id: str | None,
                  task_id: str | None) -> Grant:
        if self.precheck is not None:
            self.precheck()  # before anything is filed: a request for a channel that cannot act is noise
        binding = self.skill_map.get(action)
        if binding is None:  # a server declared a write nobody can execute: refuse loudly, file nothing
            raise ConfigError(f"the {service} server has no skill bound to {action!r}")
        if grant_id:
            grant = self.grant_for(service=service, action=action, params=params, grant_id=grant_id)
            if grant is not None:
                return grant
        row = self._file(binding, action, params, task_id)
        raise ApprovalRequiredError(
            f"{action} needs the owner's approval: request {row['id']} is waiting in Pending_Approval/ "
            f"({row['file_name']}). Once approved, the AI Employee carries it out; a call with "
            f"grant_id={row['id']} then returns that result",
            approval_id=row["id"])

    def grant_for(self, *, service: str, action: str, params: dict, grant_id: str) -> Grant | None:
        """The grant ``grant_id`` if it still allows exactly this call; None otherwise (nothing is filed)."""
        binding = self.skill_map.get(action)
        row = self.approvals.get(grant_id)
        if binding is None or row is None or not self._covers(row, binding, action, params) or not self._live(row, service):
            return None
        return grant_from_row(row)

    def mark_executed(self, grant: Any, *, result: dict) -> None:
        data = result.get("data")
        if isinstance(data, dict) and data.get("dry_run"):
            return  # a dry run spends nothing
        self.approvals.set_status(grant.id, EXECUTED, only_from=(APPROVED,))

    # -- internals --------------------------------------------------------------------------------
    def _live(self, row: dict, service: str) -> bool:
        """An executed grant is honoured only as a replay of a result the server recorded. One spent
        in a dry run recorded nothing, and must not turn into a real send once DRY_RUN is off."""
        if row["status"] != EXECUTED:
            return True
        recorded = self.state.ledger_get(ledger_key(service, grant_from_row(row).idempotency_key))
        return recorded is not None and recorded["status"] == "succeeded"

    @staticmethod
    def _covers(row: dict, binding: SkillBinding, action: str, params: dict) -> bool:
        return (row["skill"] == binding.skill and row["action"] in (action, *binding.aliases)
                and row["status"] in (APPROVED, EXECUTED) and row["approved_params"] is not None
                and canonical(loads(row["approved_params"])) == canonical(params))

    def _file(self, binding: SkillBinding, action: str, params: dict, task_id: str | None) -> dict:
        # A client asking again for the same thing gets the request that already waits, not a second file.
        waiting = self.state.query("SELECT * FROM approvals WHERE status=? AND skill=? AND action=? AND params=? "
                                   "ORDER BY created LIMIT 1", (PENDING, binding.skill, action, canonical(params)))
        if waiting:
            self.approvals.ensure_file(dict(waiting[0]))  # repaired if a crash lost it
            return dict(waiting[0])
        # A request filed by a client never takes a task's own (task, step) slot: the slot would bind
        # the task's plan step to the client's parameters. The task id it named is only a note.
        mentioned = task_id if task_id and TASK_ID.fullmatch(task_id) else None
        details = f"**Requested by:** an MCP client{f' for task `{mentioned}`' if mentioned else ''}"
        row = self.approvals.request(
            task_id=f"mcp-{secrets.token_hex(6)}", step_no=1, skill=binding.skill, action=action, params=params,
            text_param=binding.text_param, html_param=binding.html_param, risk="medium", reason=REASON,
            subject=str(params.get("subject") or action), details=details)
        if self.audit is not None:
            self.audit.record("approval.requested", target=f"{binding.skill}.{action}", parameters=params,
                              approval_status="pending", result={"approval_id": row["id"], "file": row["file_name"]},
                              task_id=row["task_id"])
        return row
