"""The week's work: tasks completed (by type, expected against actual time), the approvals that
waited longest, and the failures with their reasons. All from structured data: the task files'
frontmatter (``type``, ``created``, ``finished``, ``reason``) and the approvals table."""
from __future__ import annotations

import statistics
from typing import Any

from core.goals import number
from briefing.sources import Sources, figure
from briefing.vault_scan import TaskRecord

# Time a reply may take when the goals name no time of their own for the kind.
REPLY_KINDS = ("email", "whatsapp")


def expectations(goals: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Hours each kind of task may take, from arriving to done, with the goal that says so.
    ``expected_hours`` names kinds outright; ``max_hours_to_reply`` and ``max_days_to_invoice`` cover
    replies and invoices where it does not."""
    out: dict[str, tuple[float, str]] = {}
    reply = number(goals, "max_hours_to_reply")
    if reply:
        out.update({kind: (reply, "Business_Goals.md: goals.max_hours_to_reply") for kind in REPLY_KINDS})
    days = number(goals, "max_days_to_invoice")
    if days:
        out["invoice"] = (days * 24, "Business_Goals.md: goals.max_days_to_invoice × 24 h")
    named = goals.get("expected_hours")
    if isinstance(named, dict):
        for kind, hours in named.items():
            try:
                value = float(hours)
            except (TypeError, ValueError):
                continue
            if value > 0:
                out[str(kind)] = (value, f"Business_Goals.md: goals.expected_hours.{kind}")
    return out


def _hours(task: TaskRecord) -> float | None:
    if task.created is None or task.finished is None:
        return None
    return round((task.finished - task.created).total_seconds() / 3600, 1)


def completed(src: Sources, *, slowest: int = 10) -> dict[str, Any]:
    week, expected = src.week, expectations(src.goals)
    done = [t for t in src.tasks if t.folder == "Completed" and t.is_work and t.finished and week.contains(t.finished)]
    where = f"vault: Completed/, task files with finished in {week.label()} (frontmatter created → finished)"
    kinds: dict[str, dict[str, Any]] = {}
    late = []
    for task in done:
        kind = kinds.setdefault(task.type, {"done": 0, "hours": [], "over": 0})
        kind["done"] += 1
        hours = _hours(task)
        if hours is None:
            continue
        kind["hours"].append(hours)
        limit = expected.get(task.type)
        if limit is not None and hours > limit[0]:
            kind["over"] += 1
            late.append({"id": task.id, "type": task.type, "title": task.title, "path": task.path,
                         "actual_hours": hours, "expected_hours": limit[0],
                         "source": f"vault: {task.path}, frontmatter created → finished"})
    by_type = []
    for name in sorted(kinds, key=lambda k: (-kinds[k]["done"], k)):
        kind = kinds[name]
        limit = expected.get(name)
        by_type.append({
            "type": name, "done": figure(kind["done"], where),
            "median_hours": figure(round(statistics.median(kind["hours"]), 1), where) if kind["hours"] else None,
            "max_hours": figure(max(kind["hours"]), where) if kind["hours"] else None,
            "expected_hours": figure(limit[0], limit[1]) if limit else None,
            "over": figure(kind["over"], where) if limit else None})
    late.sort(key=lambda t: (-(t["actual_hours"] - t["expected_hours"]), t["id"]))
    return {"total": figure(len(done), where), "by_type": by_type, "bottlenecks": late[:slowest],
            "bottlenecks_total": len(late)}


def approvals(src: Sources, *, longest: int = 5) -> dict[str, Any]:
    """The requests that waited longest for the owner: decided in the week (created → decided), or
    still waiting when it ended (created → the end of the week)."""
    ends = src.week.ends.timestamp()
    items = []
    for row in src.approvals:
        decided = row["decided"] if row["decided"] is not None and row["decided"] < ends else None
        waited = ((decided if decided is not None else ends) - row["created"]) / 3600
        items.append({"id": row["id"], "action": f"{row['skill']}.{row['action']}", "file": row["file_name"] or "",
                      "status": row["status"] if decided is not None else "waiting",
                      "waited_hours": round(waited, 1),
                      "source": f"state store: approvals {row['id']} (created → "
                                f"{'decided' if decided is not None else 'end of week, not decided yet'})"})
    items.sort(key=lambda i: (-i["waited_hours"], i["id"]))
    decided = [i["waited_hours"] for i in items if i["status"] != "waiting"]
    where = f"state store: approvals decided in {src.week.label()} (created → decided)"
    return {"longest": items[:longest],
            "decided": figure(len(decided), where),
            "median_hours": figure(round(statistics.median(decided), 1), where) if decided else None,
            "waiting": figure(sum(1 for i in items if i["status"] == "waiting"),
                              f"state store: approvals not decided by the end of {src.week.label()}")}


def failures(src: Sources) -> dict[str, Any]:
    week = src.week
    items = []
    for task in src.tasks:
        if task.folder != "Failed":
            continue
        moment = task.finished or task.created
        if moment is None or not week.contains(moment):
            continue
        items.append({"id": task.id, "type": task.type, "title": task.title, "path": task.path,
                      "reason": str(task.fields.get("reason") or "no reason recorded"),
                      "source": f"vault: {task.path}, frontmatter reason"})
    items.sort(key=lambda i: i["id"])
    return {"total": figure(len(items), f"vault: Failed/, files with finished in {week.label()}"), "items": items}
