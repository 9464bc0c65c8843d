"""The one pipeline every tool call runs through, whether it came in over REST or MCP:
validate → ready? → (writes: approval gate → dry run, or the handler once through the ledger → mark
executed → audit) → data. Every call on the outside channel reports its outcome for /health.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Any

import pydantic
from aiohttp import web
from pydantic_core import to_jsonable_python

from core.state import canonical
from core.errors import AIEmployeeError, TransientError, ValidationError
from mcp_servers.tools import (AUDIT_KEY, CACHE_KEY, CALL_FIELDS, CHANNEL_KEY, CONFIG_KEY, GATE_KEY, LEDGER_KEY,
                               READY_KEY, RESOURCES_KEY, Grant, Tool, ToolContext)

log = logging.getLogger("mcp_servers")


def validate(tool: Tool, arguments: Any) -> pydantic.BaseModel:
    try:
        return tool.call_model.model_validate(arguments)
    except pydantic.ValidationError as err:
        errors = err.errors(include_url=False)
        message = "; ".join(f"{_loc(e) or 'arguments'}: {e['msg']}" for e in errors[:5])
        raise ValidationError(message, field=_loc(errors[0]) or None) from None


def _loc(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error["loc"])


async def execute(app: web.Application, tool: Tool, arguments: Any, *, request_id: str) -> Any:
    """Run one tool call and return its JSON-able data; failures raise core.errors exceptions."""
    config = app[CONFIG_KEY]
    args = validate(tool, arguments)
    ready = app.get(READY_KEY)
    if ready is not None:
        ready()  # NOT_CONFIGURED until the channel has credentials
    if tool.write_action is None or (tool.reads_when is not None and tool.reads_when(args)):
        ctx = ToolContext(config=config, request_id=request_id, app=app, dry_run=config.dry_run,
                          resources=app.get(RESOURCES_KEY))
        if tool.cached and app.get(CACHE_KEY) is not None:
            return await _cached_read(app, tool, ctx, args)
        return to_jsonable_python(await channel_call(app, tool, tool.handler(ctx, args), args))
    params = write_params(args)
    task_id = getattr(args, "task_id", None)
    gate = app[GATE_KEY]
    assert gate is not None, "create_app refuses write tools without a gate"
    # The gate files the approval request itself and raises ApprovalRequiredError when there is no grant.
    grant = await asyncio.to_thread(gate.authorize, service=config.service, action=tool.write_action,
                                    params=params, grant_id=getattr(args, "grant_id", None), task_id=task_id)
    return await perform_write(app, tool, args, grant, task_id=task_id, request_id=request_id)


async def _cached_read(app: web.Application, tool: Tool, ctx: ToolContext, args: pydantic.BaseModel) -> Any:
    """A read whose last answer is kept: while the channel is down it is served marked stale, with
    the time it was read (DESIGN §8: cache locally, sync when it returns). Every answer says when."""
    store = app[CACHE_KEY]
    key = f"{ctx.config.service}:{tool.name}:{canonical(args.model_dump(mode='json', exclude_none=True))}"
    try:
        data = to_jsonable_python(await channel_call(app, tool, tool.handler(ctx, args), args))
    except TransientError:
        hit = await asyncio.to_thread(store.cache_get, key)
        if hit is None:
            raise
        value, at = hit
        return {**value, "stale": True, "as_of": _iso(at)}
    at = await asyncio.to_thread(store.cache_put, key, data)
    return {**data, "as_of": _iso(at)} if isinstance(data, dict) else data


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def write_params(args: pydantic.BaseModel) -> dict:
    """What a write's approval is bound to: its arguments without the call fields."""
    return args.model_dump(mode="json", exclude=set(CALL_FIELDS), exclude_none=True)


async def channel_call(app: web.Application, tool: Tool, call: Awaitable[Any], args: Any = None) -> Any:
    """Await a handler's call on the outside channel, and report what it said about the channel."""
    reports = app.get(CHANNEL_KEY) if tool.open_world else None
    report = reports(tool.channel_for(args)) if reports is not None else None
    try:
        result = await call
    except Exception as err:
        if report is not None:
            await asyncio.to_thread(report.record, err)
        raise
    if report is not None:
        await asyncio.to_thread(report.record, None)
    return result


async def perform_write(app: web.Application, tool: Tool, args: pydantic.BaseModel, grant: Grant, *,
                        task_id: str | None, request_id: str) -> Any:
    """A granted write: dry run, or the handler exactly once through the server's ledger; then the
    grant is spent and the audit says what happened. Also how the outbox worker retries a write."""
    config, gate = app[CONFIG_KEY], app[GATE_KEY]
    params = write_params(args)
    ctx = ToolContext(config=config, request_id=request_id, app=app, dry_run=config.dry_run,
                      grant=grant, task_id=task_id, resources=app.get(RESOURCES_KEY))
    try:
        if config.dry_run:
            data = {"dry_run": True, "action": tool.write_action, "params": params, "would": tool.describe(params)}
        else:
            data = await _write_once(app, tool, ctx, args, params)
    except Exception as err:
        known = isinstance(err, AIEmployeeError)
        outcome = {"success": False, "error_code": err.code if known else "INTERNAL_ERROR",
                   "error": str(err) if known else "internal error"}
        if getattr(err, "queued_for", None) is not None:
            outcome["queued"] = True
        await _audit(app, tool, params, grant, task_id, outcome)
        raise
    # Mark before auditing: the grant must be spent even if the audit write fails.
    await asyncio.to_thread(gate.mark_executed, grant, result={"success": True, "data": data})
    await _audit(app, tool, params, grant, task_id, {"success": True, "dry_run": config.dry_run})
    return data


async def _write_once(app: web.Application, tool: Tool, ctx: ToolContext, args: pydantic.BaseModel,
                      params: dict) -> Any:
    async def attempt() -> Any:
        return to_jsonable_python(await channel_call(app, tool, tool.handler(ctx, args), args))

    ledger = app.get(LEDGER_KEY)
    if ledger is None:  # a bare create_app() (the base's own tests): the handler is the whole write
        return await attempt()
    reconcile = tool.reconcile

    async def find() -> Any | None:
        assert reconcile is not None
        found = await channel_call(app, tool, reconcile(ctx, args), args)
        return to_jsonable_python(found) if found is not None else None

    assert ctx.grant is not None
    retry = {"tool": tool.name, "grant_id": ctx.grant.id, "params": params, "task_id": ctx.task_id}
    return await ledger.run(ctx.grant.idempotency_key, str(tool.write_action), attempt,
                            reconcile=find if reconcile is not None else None, outbox=retry,
                            irreversible=tool.irreversible)


async def _audit(app: web.Application, tool: Tool, params: dict, grant: Grant, task_id: str | None,
                 result: dict) -> None:
    audit = app[AUDIT_KEY]
    if audit is None:
        return
    config = app[CONFIG_KEY]
    target = params.get(tool.target_param) if tool.target_param else None
    record = dict(action_type=tool.write_action, actor=f"mcp-{config.service}",
                  target=str(target) if target is not None else config.service, parameters=params,
                  approval_status="approved", approved_by=grant.approved_by, result=result,
                  task_id=task_id, idempotency_key=grant.idempotency_key)
    try:
        if inspect.iscoroutinefunction(audit) or inspect.iscoroutinefunction(getattr(audit, "__call__", None)):
            await audit(**record)
        else:
            await asyncio.to_thread(audit, **record)
    except Exception:  # noqa: BLE001 - the action already happened; a lost audit line must not hide that
        log.exception("audit record failed", extra={"action": tool.write_action, "grant_id": grant.id})
