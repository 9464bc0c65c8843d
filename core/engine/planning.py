"""The planner interface and the rule-based default planner.

A planner only proposes steps; it never runs anything. The rule-based planner is deterministic and
offline: the first ``planning`` rule of the handbook whose ``when`` matches the task decides the
steps, with ``{placeholders}`` filled from the task's fields. Text from a message is only ever
pasted into parameters as data.
"""
from __future__ import annotations

import copy
import re
import string
from dataclasses import dataclass
from typing import Any, Protocol

from core.contacts import parse_addresses
from core.engine.plans import ProposedStep, Step
from core.approval.policy import Policy
from core.engine.skills import SkillRegistry
from core.tasks import Task

MAX_FIELD_CHARS = 20_000


@dataclass(frozen=True)
class PlanContext:
    registry: SkillRegistry
    policy: Policy


class Planner(Protocol):
    name: str
    waits: bool  # planning waits on something outside this process (a model server)

    def plan(self, task: Task, history: list[Step], ctx: PlanContext) -> list[ProposedStep]:
        """Steps to add this round (empty: nothing more to do). ``history`` is the plan so far."""


class NoPlan(Exception):
    """The planner has nothing it may propose; the message tells the owner why."""


def task_fields(task: Task) -> dict[str, str]:
    """Everything a template may use: frontmatter keys, the title and the body, as plain strings."""
    fields = {str(k): ("" if v is None else str(v)) for k, v in task.meta.items()}
    body = task.doc.body
    fields["title"] = task.title
    fields["body"] = body[:MAX_FIELD_CHARS]
    fields.setdefault("subject", task.title)
    # Addresses are parsed (RFC 5322), never split on "<": a header naming several people yields no
    # address at all rather than a mangled one, and a reply goes to nobody until the owner says whom.
    senders = parse_addresses(fields.get("from", ""))
    single = senders[0] if len(senders) == 1 else None
    fields["from_email"] = single[1] if single else ""
    if not fields.get("from_name"):
        fields["from_name"] = (single[0] or single[1]) if single else (fields.get("from") or "there")
    fields.setdefault("reply_to", fields["from_email"])  # email tasks carry their own (Reply-To, else the sender)
    return fields


STEP_REF = re.compile(r"\{step(\d+)((?:\.[A-Za-z0-9_-]+)*)\}")
ITEM_REF = re.compile(r"\{item((?:\.[A-Za-z0-9_-]+)*)\}")
# A handbook step with ``for_each`` becomes one step per item of an earlier step's list result.
FOR_EACH, EACH_PARAMS = "__for_each__", "__params__"


def references(template: Any) -> set[int]:
    """The plan steps whose results ``template`` uses (``{step1.invoice.total}``)."""
    if isinstance(template, str):
        return {int(m.group(1)) for m in STEP_REF.finditer(template)}
    if isinstance(template, dict):
        return set().union(*(references(v) for v in template.values())) if template else set()
    if isinstance(template, list):
        return set().union(*(references(v) for v in template)) if template else set()
    return set()


def _walk(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class _Formatter(string.Formatter):
    """One pass over the template: task fields by name, earlier steps' results by ``stepN.path``.
    What is substituted is never parsed again, so text from a message cannot act as a template."""

    def __init__(self, fields: dict[str, str], results: dict[int, Any], item: Any = None) -> None:
        super().__init__()
        self.fields, self.results, self.item = fields, results, item

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        value = _reference("{" + field_name + "}", self.results, self.item)
        if value is not _NOT_A_REFERENCE:
            return ("" if value is None else value), field_name
        if "." in field_name or "[" in field_name:
            raise KeyError(field_name)  # no attribute access into task fields
        return self.fields.get(field_name, ""), field_name


_NOT_A_REFERENCE = object()


def _reference(text: str, results: dict[int, Any], item: Any) -> Any:
    step = STEP_REF.fullmatch(text)
    if step is not None:
        return _walk(results.get(int(step.group(1))), step.group(2))
    each = ITEM_REF.fullmatch(text)
    if each is not None and item is not None:
        return _walk(item, each.group(1))
    return _NOT_A_REFERENCE


def fill(template: Any, fields: dict[str, str], results: dict[int, Any] | None = None, *, item: Any = None) -> Any:
    """Fill ``{name}`` placeholders from the task, ``{stepN.path}`` from earlier steps' results and
    ``{item.path}`` from the item a ``for_each`` step is made for; a value that is exactly one such
    reference becomes the value itself (an object, a number), not its text."""
    if isinstance(template, str):
        if results is not None:
            whole = _reference(template, results, item)
            if whole is not _NOT_A_REFERENCE:
                return copy.deepcopy(whole)
        try:
            return _Formatter(fields, results or {}, item).vformat(template, (), {})
        except (ValueError, IndexError, AttributeError, KeyError):
            return template
    if isinstance(template, dict):
        return {k: fill(v, fields, results, item=item) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, fields, results, item=item) for v in template]
    return template


def rule_matches(when: dict[str, Any], task: Task, fields: dict[str, str]) -> bool:
    for key, expected in (when or {}).items():
        if key == "keywords":
            haystack = " ".join((fields.get("title", ""), fields.get("subject", ""), fields.get("body", ""),
                                 fields.get("file_name", ""))).lower()
            if not any(str(word).lower() in haystack for word in _as_list(expected)):
                return False
        elif key == "extensions":
            name = fields.get("file_name", "").lower()
            if not any(name.endswith("." + str(ext).lower().lstrip(".")) for ext in _as_list(expected)):
                return False
        elif key == "from_contains":
            if not any(str(s).lower() in fields.get("from", "").lower() for s in _as_list(expected)):
                return False
        elif fields.get(key, "").lower() not in [str(v).lower() for v in _as_list(expected)]:
            return False
    return True


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


class RuleBasedPlanner:
    name = "rule_based"
    waits = False

    def plan(self, task: Task, history: list[Step], ctx: PlanContext) -> list[ProposedStep]:
        if history:
            return []  # one-shot: the rules describe the whole plan
        fields = task_fields(task)
        for rule in ctx.policy.planning_rules:
            if not isinstance(rule, dict) or not rule_matches(rule.get("when") or {}, task, fields):
                continue
            steps = []
            for raw in rule.get("steps") or []:
                skill, action = str(raw.get("skill", "")), str(raw.get("action", ""))
                params, title = raw.get("params") or {}, str(raw.get("title") or f"{skill}.{action}")
                if raw.get("for_each"):
                    params = {FOR_EACH: raw["for_each"], EACH_PARAMS: params}
                if references([params, title]):
                    # Uses an earlier step's result: filled in once that step is done (Workflow.unblock).
                    steps.append(ProposedStep(skill, action, params, title, blocked=True))
                else:
                    steps.append(ProposedStep(skill, action, fill(params, fields), fill(title, fields)))
            if not steps:
                raise NoPlan(f"planning rule {rule.get('rule', '?')!r} matched but lists no steps")
            return steps
        raise NoPlan("no planning rule in Company_Handbook.md matches this task; add one, then retry the task")
