"""Skills: discovery from ``.qwen/skills/<name>/`` (SKILL.md + <name>.py), declared actions with
JSON-schema parameters, validation, and one way to invoke them that always answers
``{"success", "data", "error", "skill"}``.

A skill module defines ``skill = Skill("<name>")`` and decorates its actions. Built-ins and test
skills go through the same registration path.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import jsonschema

from core.documents import Document, DocumentError
from core.errors import AIEmployeeError, OutcomeUnknownError, ValidationError
from core.approval.policy import ActionInfo
from core.contacts import RECIPIENT_KINDS

log = logging.getLogger(__name__)


def tool_schemas(skill_file: str) -> dict[str, dict]:
    """The servers' tool input schemas checked in beside a skill (``tools.schema.json``, pinned to the
    servers by tests): a plan that validates here is a call the server accepts, without its code."""
    return json.loads(Path(skill_file).with_name("tools.schema.json").read_text("utf-8"))


@dataclass(frozen=True)
class ActionContext:
    """What an action may know about the call; the grant id travels to the MCP servers."""
    idempotency_key: str
    task_id: str | None
    grant_id: str | None
    dry_run: bool
    settings: Any = None


ActionFn = Callable[[dict, ActionContext], Any]


@dataclass(frozen=True)
class Action:
    skill: str
    name: str
    fn: ActionFn
    schema: dict
    description: str
    read_only: bool
    channel: str = "local"
    irreversible: bool = False
    text_param: str | None = None       # the parameter shown as the editable "## Message" section
    html_param: str | None = None       # an HTML rendering of the text: follows the owner's edit of it
    amount_param: str | None = None
    recipient_params: tuple[str, ...] = ()   # to, cc, bcc: the policy's known-contacts rule checks them all
    recipient_kind: str = "email"            # how the channel names them: email, phone, handle, name, chat
    idempotent: bool = False            # the downstream dedups by idempotency key: an unknown outcome may be retried
    reconcile: Callable[[dict, ActionContext], Any] | None = None

    @property
    def info(self) -> ActionInfo:
        return ActionInfo(self.skill, self.name, self.read_only, self.channel, self.irreversible,
                          self.amount_param, self.recipient_params, self.recipient_kind)

    def validate(self, params: Any) -> dict:
        if not isinstance(params, dict):
            raise ValidationError(f"{self.skill}.{self.name}: parameters must be an object", field="params")
        errors = sorted(_validator(self).iter_errors(params), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.absolute_path) or "params"
            raise ValidationError(f"{self.skill}.{self.name}: {where}: {err.message}", field=where)
        return params


_VALIDATORS: dict[int, jsonschema.Draft202012Validator] = {}


def _validator(action: "Action") -> jsonschema.Draft202012Validator:
    """Compiled once per action: building a validator costs more than using it."""
    found = _VALIDATORS.get(id(action.schema))
    if found is None:
        found = _VALIDATORS[id(action.schema)] = jsonschema.Draft202012Validator(action.schema)
    return found


@dataclass
class Skill:
    name: str
    description: str = ""
    actions: dict[str, Action] = field(default_factory=dict)

    def action(self, *, schema: dict, description: str = "", read_only: bool = False, channel: str = "local",
               irreversible: bool = False, text_param: str | None = None, html_param: str | None = None,
               amount_param: str | None = None, recipient_params: tuple[str, ...] = (), recipient_kind: str = "email",
               idempotent: bool = False, name: str | None = None) -> Callable[[ActionFn], ActionFn]:
        if recipient_kind not in RECIPIENT_KINDS:
            raise ValueError(f"skill {self.name}: recipient_kind must be one of {', '.join(RECIPIENT_KINDS)}")

        def register(fn: ActionFn) -> ActionFn:
            action_name = name or fn.__name__
            if action_name in self.actions:
                raise ValueError(f"skill {self.name}: action {action_name} is declared twice")
            schema.setdefault("type", "object")
            jsonschema.Draft202012Validator.check_schema(schema)
            self.actions[action_name] = Action(
                skill=self.name, name=action_name, fn=fn, schema=schema,
                description=description or (fn.__doc__ or "").strip(), read_only=read_only, channel=channel,
                irreversible=irreversible, text_param=text_param, html_param=html_param, amount_param=amount_param,
                recipient_params=tuple(recipient_params), recipient_kind=recipient_kind, idempotent=idempotent)
            return fn
        return register

    def reconciler(self, action_name: str) -> Callable[[Callable], Callable]:
        """Register how to find out whether an action with a given idempotency key already happened."""
        def register(fn: Callable) -> Callable:
            action = self.actions[action_name]
            self.actions[action_name] = Action(**{**action.__dict__, "reconcile": fn})
            return fn
        return register


@dataclass(frozen=True)
class Outcome:
    success: bool
    skill: str
    data: Any = None
    error: str = ""
    error_code: str | None = None
    retryable: bool = False
    unknown: bool = False   # it may or may not have happened (timeout mid-call): reconcile first
    deferred: float | None = None  # the server queued it and tries again in this many seconds

    def as_dict(self) -> dict:
        return {"success": self.success, "data": self.data, "error": self.error, "skill": self.skill}


class SkillRegistry:
    def __init__(self) -> None:
        self.skills: dict[str, Skill] = {}
        self.sources: dict[str, Path] = {}
        self.load_errors: dict[str, str] = {}

    def register(self, skill: Skill, source: Path | None = None) -> None:
        if skill.name in self.skills:
            raise ValueError(f"skill {skill.name} is registered twice ({self.sources.get(skill.name)} and {source})")
        self.skills[skill.name] = skill
        if source:
            self.sources[skill.name] = source

    def discover(self, folder: Path) -> "SkillRegistry":
        """Load every ``<folder>/<name>/<name>.py`` whose SKILL.md names it; a broken skill is reported, not fatal."""
        for skill_dir in sorted(p for p in Path(folder).glob("*/") if p.is_dir() and not p.name.startswith((".", "_"))):
            name = skill_dir.name
            try:
                self.register(_load_skill(skill_dir, name), skill_dir)
            except Exception as err:  # a broken skill must not stop the others
                self.load_errors[name] = f"{type(err).__name__}: {err}"
                log.error("skill %s not loaded: %s", name, err)
        return self

    def action(self, skill: str, action: str) -> Action:
        found = self.skills.get(skill)
        if found is None:
            raise ValidationError(f"unknown skill {skill!r}", field="skill")
        act = found.actions.get(action)
        if act is None:
            raise ValidationError(f"skill {skill} has no action {action!r}", field="action")
        return act

    def all_actions(self) -> list[Action]:
        return [a for s in self.skills.values() for a in s.actions.values()]

    def invoke(self, skill: str, action: str, params: Mapping[str, Any], ctx: ActionContext) -> Outcome:
        try:
            act = self.action(skill, action)
            data = act.fn(act.validate(dict(params)), ctx)
            return Outcome(True, skill, data)
        except AIEmployeeError as err:
            return Outcome(False, skill, error=str(err), error_code=err.code, retryable=err.retryable,
                           unknown=isinstance(err, OutcomeUnknownError), deferred=getattr(err, "queued_for", None))
        except Exception as err:  # a skill bug is a failed action, not a dead process
            log.exception("skill %s.%s crashed", skill, action)
            return Outcome(False, skill, error=f"{type(err).__name__}: {err}", error_code="INTERNAL_ERROR")


def _load_skill(skill_dir: Path, name: str) -> Skill:
    doc_path = skill_dir / "SKILL.md"
    code_path = skill_dir / f"{name}.py"
    if not doc_path.exists() or not code_path.exists():
        raise FileNotFoundError(f"{skill_dir} needs SKILL.md and {name}.py")
    try:
        meta = Document.from_bytes(doc_path.read_bytes()).meta
    except DocumentError as err:
        raise ValueError(f"SKILL.md: {err}") from err
    if meta.get("name") != name:
        raise ValueError(f"SKILL.md names {meta.get('name')!r}, folder is {name!r}")
    module_name = f"ai_employee_skills.{name}"
    spec = importlib.util.spec_from_file_location(module_name, code_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    skill = getattr(module, "skill", None)
    if not isinstance(skill, Skill) or skill.name != name:
        raise ValueError(f"{code_path.name} must define skill = Skill({name!r})")
    if not skill.description:
        skill.description = str(meta.get("description", ""))
    return skill
