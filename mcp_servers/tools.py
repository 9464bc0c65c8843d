"""What a tool is, what it gets when it runs, and the typed keys the app stores them under.

A `Tool` is declared once and served twice, as a REST route and as an MCP tool; both go through
`mcp_servers.dispatch.execute`, so validation, the approval gate, dry run and audit cannot drift apart.
"""
from __future__ import annotations

import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import pydantic
from aiohttp import web

# The two fields the base adds to every write tool's input; the approval binding never includes them.
CALL_FIELDS = ("grant_id", "task_id")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_GRANT_HELP = "Id of the approval grant that allows this exact call; omit it to file an approval request."
_TASK_HELP = "Id of the vault task this call belongs to, recorded with the approval request and the audit record."


class ToolInput(pydantic.BaseModel):
    """Base of every tool input model: an unknown field is an error, never silently dropped; NaN and
    infinities are refused (they are not JSON, and no amount or count is one)."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True)
class ServerConfig:
    service: str  # "email", "browser", "odoo", "twitter", "meta"
    version: str
    port: int
    host: str = "127.0.0.1"
    auth_token: str | None = None  # None: no auth (loopback-only deployments)
    dry_run: bool = True
    allowed_origins: tuple[str, ...] = ()  # exact Origin values accepted besides loopback ones
    allowed_hosts: tuple[str, ...] = ()  # Host names accepted besides loopback and `host`
    max_body_bytes: int = 1 << 20

    @classmethod
    def from_settings(cls, settings: Any, service: str, version: str) -> ServerConfig:
        """From `core.config.Settings` (duck-typed so this module stays free of the kernel's config)."""
        return cls(service=service, version=version, host=settings.mcp_host, port=settings.mcp_ports[service],
                   auth_token=settings.mcp_auth_token, dry_run=settings.dry_run)


@dataclass(frozen=True)
class Grant:
    id: str
    idempotency_key: str
    approved_by: str  # "owner" or "policy:<rule>"


class ApprovalGate(Protocol):
    """The owner's gate in front of every write (real one: core/approval/gate.py). Sync: it talks to SQLite."""

    def authorize(self, *, service: str, action: str, params: dict, grant_id: str | None,
                  task_id: str | None) -> Grant:
        """Return the grant when `grant_id` names a valid approved grant bound to exactly this
        action+params; otherwise file an approval request and raise ApprovalRequiredError."""

    def mark_executed(self, grant: Grant, *, result: dict) -> None: ...


class Audit(Protocol):
    def __call__(self, *, action_type: str, actor: str, target: str, parameters: dict, approval_status: str,
                 approved_by: str | None, result: Any, task_id: str | None,
                 idempotency_key: str | None) -> Any: ...


# A check that waits on I/O is a coroutine and gets a deadline; an instant one may be a plain function.
HealthChecks = Callable[[], Awaitable[dict] | dict]


@dataclass(frozen=True)
class ToolContext:
    config: ServerConfig
    request_id: str
    app: web.Application  # for the concrete server's own AppKeys (its connector, its browser...)
    dry_run: bool
    grant: Grant | None = None  # set for write tools: use grant.idempotency_key upstream
    task_id: str | None = None
    resources: Any = None  # what the vertical's connect() built: its connector, its intake...


Handler = Callable[[ToolContext, Any], Awaitable[Any]]
# Finds a write whose outcome is unknown upstream (by the grant's idempotency key): its result, or None.
Reconciler = Callable[[ToolContext, Any], Awaitable[Any | None]]


# Every write tool's description says so, in these words (pinned in the tools/list snapshots).
NEEDS_APPROVAL = "Needs the owner's approval: without a valid grant_id it files a request and answers APPROVAL_REQUIRED."


@dataclass(frozen=True, eq=False)
class Tool:
    name: str  # snake_case MCP tool name, e.g. "send_email"
    description: str
    input_model: type[pydantic.BaseModel]  # subclass ToolInput
    output_schema: dict  # JSON schema of the envelope's `data`
    handler: Handler  # returns JSON-able data; raises core.errors for failures
    method: str  # "GET" (query parameters) or "POST" (JSON object body)
    path: str  # REST path, e.g. "/send-email"
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = True
    write_action: str | None = None  # set for writes: the approval-gated action name
    title: str | None = None
    target_param: str | None = None  # the param naming what a write touches (audit "target")
    summary: Callable[[dict], str] | None = None  # one line for a dry run: "send an email to ..."
    reconcile: Reconciler | None = None  # writes: how to tell whether an interrupted attempt happened
    cached: bool = False  # reads: the last answer is kept, and served marked stale while the channel is down
    irreversible: bool = False  # writes (a payment): after an outcome in doubt, never attempted again
    # writes: these arguments only read (an automation whose every step reads), so no approval is asked
    reads_when: Callable[[Any], bool] | None = None
    # The outside channel it reports on, when not the vertical's (a browser site); or which one, from the arguments.
    channel: str | Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append("name must be snake_case")
        if self.method not in ("GET", "POST"):
            problems.append("method must be GET or POST")
        if not self.path.startswith("/") or self.path in ("/health", "/mcp"):
            problems.append("path must start with / and not be /health or /mcp")
        if self.input_model.model_config.get("extra") != "forbid":
            problems.append("input_model must forbid extra fields (subclass ToolInput)")
        if self.write_action is not None:
            if self.read_only or self.method != "POST":
                problems.append("a write tool is POST and not read_only")
            if clash := set(CALL_FIELDS) & set(self.input_model.model_fields):
                problems.append(f"input_model must not define {sorted(clash)}: the base adds them")
        if problems:
            raise ValueError(f"tool {self.name!r}: " + "; ".join(problems))

    @cached_property
    def call_model(self) -> type[pydantic.BaseModel]:
        """The model arguments are validated against: the input model, plus grant/task ids for writes."""
        if self.write_action is None:
            return self.input_model
        return pydantic.create_model(
            self.input_model.__name__, __base__=self.input_model, __module__=self.input_model.__module__,
            grant_id=(str | None, pydantic.Field(None, description=_GRANT_HELP)),
            task_id=(str | None, pydantic.Field(None, description=_TASK_HELP)),
        )

    @cached_property
    def input_schema(self) -> dict:
        return self.call_model.model_json_schema()

    @cached_property
    def list_fields(self) -> frozenset[str]:
        """Fields that take repeated query parameters (`?tag=a&tag=b`) on GET routes."""
        return frozenset(name for name, f in self.call_model.model_fields.items() if _is_sequence(f.annotation))

    def channel_for(self, args: Any) -> str | None:
        return self.channel(args) if callable(self.channel) else self.channel

    def describe(self, params: Mapping[str, Any]) -> str:
        if self.summary is not None:
            return self.summary(dict(params))
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items())
        return f"{self.write_action} ({shown})" if shown else str(self.write_action)


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(arg) for arg in typing.get_args(annotation))
    return (origin or annotation) in (list, tuple, set, frozenset)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Typed application and request keys, all in one place. Concrete servers add their own
# (their connector, their browser) beside their module and set them in a cleanup_ctx.
CONFIG_KEY = web.AppKey("config", ServerConfig)
TOOLS_KEY: web.AppKey[dict[str, Tool]] = web.AppKey("tools")
GATE_KEY: web.AppKey[ApprovalGate | None] = web.AppKey("approval_gate")
AUDIT_KEY: web.AppKey[Audit | None] = web.AppKey("audit")
HEALTH_KEY: web.AppKey[HealthChecks | None] = web.AppKey("health_checks")
MCP_TOOLS_LIST_KEY: web.AppKey[dict] = web.AppKey("mcp_tools_list")
# Set by the server builder (mcp_servers.server); a bare create_app() runs without them.
RESOURCES_KEY: web.AppKey[Any] = web.AppKey("resources")
READY_KEY: web.AppKey[Callable[[], None]] = web.AppKey("ready")  # raises NotConfiguredError until configured
LEDGER_KEY: web.AppKey[Any] = web.AppKey("write_ledger")
CHANNEL_KEY: web.AppKey[Any] = web.AppKey("channel_report")
CACHE_KEY: web.AppKey[Any] = web.AppKey("read_cache")  # the state store, for tools declared cached
REQUEST_ID_KEY = web.RequestKey("request_id", str)
