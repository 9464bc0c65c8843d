"""The owner's rules, read from the fenced YAML block in ``Company_Handbook.md``.

The shipped default approves nothing that leaves the machine. Read-only actions never need
approval. An auto-approval rule applies only inside its conditions (amount, known contacts), outside
quiet hours and within the channel's hourly rate limit; everything else goes to the owner. The
``watch`` key names the words that make an incoming message need the owner (the WhatsApp watcher).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from core.contacts import normalise
from core.errors import ValidationError

_BLOCK = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
DEFAULT_RATE_LIMITS = {"email": 10, "payment": 3, "social": 5, "message": 10}
# Words that make an incoming message (WhatsApp) need the owner when the handbook names none (``watch.keywords``).
DEFAULT_WATCH_KEYWORDS = ("urgent", "asap", "invoice", "payment", "help")


class PolicyError(ValidationError):
    """The handbook's policy block cannot be used; the message says where."""


@dataclass(frozen=True)
class ActionInfo:
    """What the policy needs to know about an action (declared by its skill)."""
    skill: str
    action: str
    read_only: bool
    channel: str = "local"          # email | message | social | payment | accounting | local
    irreversible: bool = False
    amount_param: str | None = None
    recipient_params: tuple[str, ...] = ()   # every parameter that names someone the action reaches
    recipient_kind: str = "email"            # how this channel names them (core.contacts.RECIPIENT_KINDS)


@dataclass(frozen=True)
class Decision:
    auto: bool
    rule: str          # which rule decided: "read-only", the auto-approve rule's name, or why not
    risk: str          # low | medium | high
    reason: str        # for the owner, in the approval request


@dataclass(frozen=True)
class AutoRule:
    name: str
    skill: str
    action: str = "*"
    max_amount: float | None = None
    known_contacts_only: bool = False

    def matches(self, info: ActionInfo) -> bool:
        return self.skill in (info.skill, "*") and self.action in (info.action, "*")


@dataclass(frozen=True)
class Policy:
    auto_approve: tuple[AutoRule, ...] = ()
    payment_approval_over: float = 50.0
    known_contacts: frozenset[str] = frozenset()
    rate_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    quiet_hours: tuple[dt.time, dt.time] | None = None
    approval_ttl_hours: float | None = None
    planning_rules: tuple[dict, ...] = ()
    bank_formats: tuple[dict, ...] = ()  # the owner's bank CSV column mappings (odoo_integration.bank_files)
    watch_keywords: tuple[str, ...] = DEFAULT_WATCH_KEYWORDS  # a message with one of these needs the owner

    # -- decisions -------------------------------------------------------------------------------
    def decide(self, info: ActionInfo, params: dict[str, Any], *, now: dt.datetime | None = None,
               take_rate_slot: Callable[[str, int], bool] | None = None) -> Decision:
        if info.read_only:
            return Decision(True, "read-only", "low", "read-only action")
        risk = "high" if info.irreversible or info.channel == "payment" else "medium"
        amount = _number(params.get(info.amount_param)) if info.amount_param else None
        if info.channel == "payment" and amount is not None and amount > self.payment_approval_over:
            return Decision(False, "payment-threshold", "high",
                            f"payment of {amount:g} is over the {self.payment_approval_over:g} limit that always needs approval")
        rule = next((r for r in self.auto_approve if r.matches(info)), None)
        if rule is None:
            return Decision(False, "no-rule", risk, f"no rule in the handbook auto-approves {info.skill}.{info.action}")
        if rule.max_amount is not None and (amount is None or amount > rule.max_amount):
            return Decision(False, rule.name, risk, f"amount {amount} is over rule {rule.name!r}'s limit {rule.max_amount:g}")
        if rule.known_contacts_only:
            recipients = [name for p in info.recipient_params for name in normalise(info.recipient_kind, params.get(p))]
            known = {name for contact in self.known_contacts for name in normalise(info.recipient_kind, contact)}
            strangers = [r for r in recipients if r not in known]
            if strangers or not recipients:
                who = ", ".join(strangers) or "the recipient"
                return Decision(False, rule.name, risk, f"{who} {'is a new contact' if len(strangers) < 2 else 'are new contacts'}")
        if self.quiet_hours and _within(self.quiet_hours, (now or dt.datetime.now()).time()):
            start, end = self.quiet_hours
            return Decision(False, "quiet-hours", risk, f"quiet hours ({start:%H:%M}-{end:%H:%M}): auto-approval paused")
        limit = self.rate_limits.get(info.channel, self.rate_limits.get("default"))
        if limit is not None and info.channel != "local" and take_rate_slot is not None:
            if not take_rate_slot(info.channel, int(limit)):
                return Decision(False, "rate-limit", risk, f"the {info.channel} limit of {limit} per hour is reached")
        return Decision(True, rule.name, risk, f"auto-approved by rule {rule.name!r}")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _within(window: tuple[dt.time, dt.time], moment: dt.time) -> bool:
    start, end = window
    return start <= moment < end if start <= end else (moment >= start or moment < end)


def _time(value: Any, where: str) -> dt.time:
    try:
        hours, minutes = str(value).split(":")
        return dt.time(int(hours), int(minutes))
    except (ValueError, TypeError):
        raise PolicyError(f"{where} must be a time like '22:00', got {value!r}") from None


def parse_policy(data: dict[str, Any]) -> Policy:
    section = data.get("policy") or {}
    if not isinstance(section, dict):
        raise PolicyError("'policy' must be a mapping")
    rules = []
    for i, raw in enumerate(section.get("auto_approve") or []):
        if not isinstance(raw, dict) or not raw.get("skill"):
            raise PolicyError(f"policy.auto_approve[{i}] needs at least 'skill' (and usually 'action')")
        rules.append(AutoRule(
            name=str(raw.get("rule") or raw.get("name") or f"rule-{i + 1}"),
            skill=str(raw["skill"]), action=str(raw.get("action", "*")),
            max_amount=_number(raw.get("max_amount")) if raw.get("max_amount") is not None else None,
            known_contacts_only=bool(raw.get("known_contacts_only", False)),
        ))
    limits = dict(DEFAULT_RATE_LIMITS)
    for channel, value in (section.get("rate_limits_per_hour") or {}).items():
        if not isinstance(value, int) or value < 0:
            raise PolicyError(f"policy.rate_limits_per_hour.{channel} must be a whole number, got {value!r}")
        limits[str(channel)] = value
    quiet = section.get("quiet_hours")
    quiet_hours = None
    if quiet:
        quiet_hours = (_time(quiet.get("start"), "policy.quiet_hours.start"), _time(quiet.get("end"), "policy.quiet_hours.end"))
    thresholds = section.get("thresholds") or {}
    planning = data.get("planning") or []
    if not isinstance(planning, list):
        raise PolicyError("'planning' must be a list of rules")
    for i, rule in enumerate(planning):
        _check_planning_rule(rule, f"planning[{i}]")
    ttl = section.get("approval_ttl_hours")
    formats = data.get("bank_formats") or []
    if not isinstance(formats, list) or not all(isinstance(f, dict) for f in formats):
        raise PolicyError("'bank_formats' must be a list of column mappings (name, date, amount, ...)")
    return Policy(
        auto_approve=tuple(rules),
        payment_approval_over=float(thresholds.get("payment_approval_over", 50)),
        known_contacts=frozenset(str(c).strip() for c in section.get("known_contacts") or [] if str(c).strip()),
        rate_limits=limits,
        quiet_hours=quiet_hours,
        approval_ttl_hours=float(ttl) if ttl is not None else None,
        planning_rules=tuple(planning),
        bank_formats=tuple(formats),
        watch_keywords=_watch_keywords(data.get("watch")),
    )


def _watch_keywords(section: Any) -> tuple[str, ...]:
    """``watch: {keywords: [...]}``: absent (or null) means the defaults, ``[]`` means none."""
    if section is None:
        return DEFAULT_WATCH_KEYWORDS
    if not isinstance(section, dict):
        raise PolicyError("'watch' must be a mapping such as {keywords: [urgent, invoice]}")
    unknown = sorted(str(k) for k in section if k != "keywords")
    if unknown:
        raise PolicyError(f"watch has unknown key(s) {', '.join(map(repr, unknown))}: the only one is 'keywords'")
    raw = section.get("keywords")
    if raw is None:
        return DEFAULT_WATCH_KEYWORDS
    if not isinstance(raw, list):
        raise PolicyError(f"watch.keywords must be a list of words such as [urgent, invoice], got {_shown(raw)}")
    keywords: list[str] = []
    for i, word in enumerate(raw):
        if not isinstance(word, str) or not word.strip():
            raise PolicyError(f"watch.keywords[{i}] must be a non-empty word or phrase (quote numbers), "
                              f"got {_shown(word)}")
        if " ".join(word.split()) not in keywords:
            keywords.append(" ".join(word.split()))
    return tuple(keywords)


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _check_planning_rule(rule: Any, where: str) -> None:
    """A broken rule is refused when the handbook is read (the last good rules stay in force), not
    discovered later by a task it would crash."""
    if not isinstance(rule, dict):
        raise PolicyError(f"{where} must be a mapping with 'when' and 'steps'")
    if not isinstance(rule.get("when") or {}, dict):
        raise PolicyError(f"{where}.when must be a mapping such as {{type: email}}")
    steps = rule.get("steps")
    if not isinstance(steps, list) or not steps:
        raise PolicyError(f"{where}.steps must be a non-empty list")
    for j, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("skill"), str) or not isinstance(step.get("action"), str):
            raise PolicyError(f"{where}.steps[{j}] must be a mapping with 'skill' and 'action'")
        params = step.get("params") or {}
        whole = r"\{(?:step\d+|item)[\w.-]*\}"  # one earlier step's result, or (for_each) the item itself
        if not isinstance(params, dict) and not (isinstance(params, str) and re.fullmatch(whole, params)):
            raise PolicyError(f"{where}.steps[{j}].params must be a mapping, or one earlier step's result "
                              "such as \"{step1.invoice}\"")
        for ref in re.findall(r"\{step(\d+)", str([step.get("params"), step.get("title"), step.get("for_each")])):
            if not 1 <= int(ref) <= j:
                raise PolicyError(f"{where}.steps[{j}] uses {{step{ref}...}}: a step may use only the results of "
                                  f"the steps before it (1 to {j})")


def policy_from_markdown(text: str) -> Policy:
    for match in _BLOCK.finditer(text):
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError as err:
            raise PolicyError(f"the YAML block in the handbook is invalid: {err}") from err
        if isinstance(data, dict) and any(key in data for key in ("policy", "planning", "bank_formats", "watch")):
            return parse_policy(data)
    return Policy()


class PolicySource:
    """Reads the handbook again when it changes, so the owner's edits apply without a restart.
    A broken edit keeps the last good policy (or the safe default) and reports the error."""

    def __init__(self, handbook: Path) -> None:
        self.handbook = handbook
        self._stamp: tuple[float, int] | None = None
        self._policy = Policy()
        self.error: str | None = None

    def current(self) -> Policy:
        try:
            stat = self.handbook.stat()
        except FileNotFoundError:
            self._policy, self._stamp, self.error = Policy(), None, None
            return self._policy
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._policy = policy_from_markdown(self.handbook.read_text("utf-8"))
                self.error = None
            except (PolicyError, UnicodeDecodeError) as err:
                self.error = f"Company_Handbook.md policy ignored: {err}"
        return self._policy
