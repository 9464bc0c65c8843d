"""Test-only skill: every execution appends a row to a SQLite counter, so tests can prove that each
idempotency key ran exactly once. Its reconciler answers from the same counter, like a real API
that can be searched by idempotency key."""
from __future__ import annotations

import os
import sqlite3
import time

from core.engine.skills import ActionContext, Skill

skill = Skill("test_skill")


def _db(ctx: ActionContext) -> sqlite3.Connection:
    db = sqlite3.connect(ctx.settings.env["TEST_COUNTER_DB"], timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS runs (key TEXT, task_id TEXT, params TEXT, pid INTEGER, at REAL)")
    return db


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["note"],
                      "properties": {"note": {"type": "string"}, "text": {"type": "string"},
                                     "to": {"type": "string"}}},
              channel="email", text_param="text", recipient_params=("to",))
def record(params: dict, ctx: ActionContext) -> dict:
    delay = float(ctx.settings.env.get("TEST_SKILL_DELAY", "0") or 0)
    if delay:
        time.sleep(delay)  # widens the window in which a crash test can kill us mid-action
    import json
    db = _db(ctx)
    db.execute("INSERT INTO runs VALUES (?,?,?,?,?)", (ctx.idempotency_key, ctx.task_id, json.dumps(params),
                                                      os.getpid(), time.time()))
    db.close()
    return {"recorded": ctx.idempotency_key, "dry_run": ctx.dry_run}


@skill.reconciler("record")
def record_reconcile(params: dict, ctx: ActionContext) -> dict | None:
    db = _db(ctx)
    row = db.execute("SELECT key FROM runs WHERE key=?", (ctx.idempotency_key,)).fetchone()
    db.close()
    return {"recorded": row[0], "reconciled": True} if row else None


# The same action under a second name, so a handbook can auto-approve one and not the other.
skill.action(schema={"type": "object", "additionalProperties": False, "required": ["note"],
                     "properties": {"note": {"type": "string"}, "text": {"type": "string"}}},
             channel="local", text_param="text", name="record_gated")(record)
skill.reconciler("record_gated")(record_reconcile)


@skill.action(schema={"type": "object", "additionalProperties": False, "properties": {}},
              read_only=True)
def peek(params: dict, ctx: ActionContext) -> dict:
    return {"ok": True}


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["note"],
                      "properties": {"note": {"type": "string"}}}, read_only=True)
def look(params: dict, ctx: ActionContext) -> dict:
    """A read whose result later steps use: {"loud": NOTE, "found": {"count": 3}, "items": [...]}."""
    return {"loud": params["note"].upper(), "found": {"count": 3},
            "items": [{"name": f"{params['note']}-{n}", "n": n} for n in (1, 2)]}


@skill.action(schema={"type": "object", "additionalProperties": False, "properties": {"note": {"type": "string"}}},
              channel="email")
def unreachable(params: dict, ctx: ActionContext) -> dict:
    """A write whose server cannot be reached (as if it were down)."""
    from core.errors import TransientError
    raise TransientError("http://127.0.0.1:1 is unreachable (ConnectionError); nothing was done")
