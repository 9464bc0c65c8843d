"""The scheduler's look at the whole suite: every MCP server's /health (what it says about its channel,
its state store and its outbox) and every process's heartbeat, as a Dashboard section and a list of
what is wrong."""
from __future__ import annotations

import time
from typing import Any

import requests

from core.config import MCP_PORTS, Settings
from core.state import StateStore
from core.text import one_line

STALE_SECONDS = 30.0   # a process beats every few seconds: this long silent is a process in trouble
TIMEOUT = (1.0, 3.0)


def _server(settings: Settings, service: str) -> tuple[str, str]:
    """(status, what it says) of one server's /health."""
    headers = {"Authorization": f"Bearer {settings.mcp_auth_token}"} if settings.mcp_auth_token else {}
    try:
        body: dict[str, Any] = requests.get(f"{settings.mcp_url(service)}/health", timeout=TIMEOUT,
                                            headers=headers).json()
    except (requests.RequestException, ValueError):
        return "down", "does not answer /health"
    degraded = [f"{name}: {one_line(str(check.get('detail') or check.get('status')))}"
                for name, check in (body.get("checks") or {}).items()
                if isinstance(check, dict) and check.get("status") not in ("healthy", None)]
    return str(body.get("status") or "?"), "; ".join(degraded)[:300] or "all checks healthy"


def suite_health(settings: Settings, state: StateStore, *, now: float | None = None) -> tuple[dict, list[str]]:
    now = time.time() if now is None else now
    lines = ["| part | status | what it says |", "|---|---|---|"]
    problems = []
    for service in MCP_PORTS:
        status, said = _server(settings, service)
        lines.append(f"| mcp-{service} | {status} | {said.replace('|', '/')} |")
        if status == "down":
            problems.append(f"mcp-{service} {said}")
    for row in state.health_rows():
        silent = now - row["heartbeat"]
        if row["status"] != "stopped" and silent > STALE_SECONDS:
            problems.append(f"{row['process']} silent for {silent:.0f} s")
    return {"title": "Suite health", "lines": lines}, problems
