"""The owner's targets, from the fenced YAML block of ``Business_Goals.md`` (the Dashboard and the
briefing compare the figures with them). A missing or broken block means no targets, never a crash."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_BLOCK = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def read_goals(vault_root: Path) -> dict[str, Any]:
    """The ``goals:`` mapping (e.g. ``monthly_revenue_target``), or {} when there is none to read."""
    try:
        text = (Path(vault_root) / "Business_Goals.md").read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    for match in _BLOCK.finditer(text):
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and isinstance(data.get("goals"), dict):
            return data["goals"]
    return {}


def number(goals: dict[str, Any], name: str) -> float | None:
    try:
        return float(goals[name])
    except (KeyError, TypeError, ValueError):
        return None
