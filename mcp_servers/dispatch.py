"""The one pipeline every tool call runs through, whether it came in over REST or MCP:
validate → (writes: approval gate → dry run or handler → mark executed → audit) → data.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Mapping
from typing import Any

import pydantic
from aiohttp import web
from pydantic_core import to_jsonable_python

from core.errors import AIEmployeeError, ValidationError
from mcp_servers.tools import AUDIT_KEY, CALL_FIELDS, CONFIG_KEY, GATE_KEY, Grant, Tool, ToolContext

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
    if tool.write_action is None:
        ctx = ToolContext(config=config, request_id=request_id, app=app, dry_run=config.dry_run)
        return to_jsonable_python(await tool.handler(ctx, args))
    return await _execute_write(app, tool, args, request_id)


async def _execute_write(app: web.Application, tool: Tool, args: pydantic.BaseModel, request_id: str) -> Any:
    config, gate = app[CONFIG_KEY], app[GATE_KEY]
    assert gate is not None, "create_app refuses write tools without a gate"
    params = args.model_dump(mode="json", exclude=set(CALL_FIELDS), exclude_none=True)
    task_id = getattr(args, "task_id", None)
    # The gate files the approval request itself and raises ApprovalRequiredError when there is no grant.
    grant = await asyncio.to_thread(gate.authorize, service=config.service, action=tool.write_action,
                                    params=params, grant_id=getattr(args, "grant_id", None), task_id=task_id)
    ctx = ToolContext(config=config, request_id=request_id, app=app, dry_run=config.dry_run,
                      grant=grant, task_id=task_id)
    try:
        if config.dry_run:
            data = {"dry_run": True, "action": tool.write_action, "params": params, "would": tool.describe(params)}
        else:
            data = to_jsonable_python(await tool.handler(ctx, args))
    except Exception as err:
        known = isinstance(err, AIEmployeeError)
        outcome = {"success": False, "error_code": err.code if known else "INTERNAL_ERROR",
                   "error": str(err) if known else "internal error"}
        await _audit(app, tool, params, grant, task_id, outcome)
        raise
    # Mark before auditing: the grant must be spent even if the audit write fails.
    await asyncio.to_thread(gate.mark_executed, grant, result={"success": True, "data": data})
    await _audit(app, tool, params, grant, task_id, {"success": True, "dry_run": config.dry_run})
    return data


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
