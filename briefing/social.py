"""Social performance from the weekly summaries the X and Meta servers keep in the state store
(``summary:<platform>``, written with ``Social_Media_Summaries/<date>_<platform>.md`` each Monday)."""
from __future__ import annotations

from typing import Any

from core.goals import number
from briefing.odoo import iso_utc, shown_time
from briefing.sources import SOCIAL_PLATFORMS, Sources, figure

NAMES = {"twitter": "X", "facebook": "Facebook", "instagram": "Instagram"}


def social(src: Sources) -> dict[str, Any]:
    goal = number(src.goals, "social_posts_per_week")
    platforms = []
    for platform in SOCIAL_PLATFORMS:
        name = NAMES[platform]
        hit = src.social.get(platform)
        if hit is None:
            platforms.append({"platform": platform, "name": name,
                              "state": f"missing: no weekly summary of {name} yet (its server writes one each Monday "
                                       "once the account is connected)"})
            continue
        data, at = hit
        period = data.get("period") or {}
        as_of = iso_utc(at)
        source = (f"{name} weekly summary {period.get('start')}..{period.get('end')} (state store summary:{platform}, "
                  f"Social_Media_Summaries/{period.get('end')}_{platform}.md), as of {shown_time(as_of)}")
        state = "ok" if period.get("start") == src.week.start.isoformat() else (
            f"stale as of {shown_time(as_of)}: the latest summary covers {period.get('start')}..{period.get('end')}")
        best = data.get("best_post") or None
        platforms.append({
            "platform": platform, "name": name, "state": state,
            "posts": figure(int(data.get("posts") or 0), source), "reach": figure(int(data.get("reach") or 0), source),
            "engagement": figure(int(data.get("engagement") or 0), source),
            "engagement_rate": figure(float(data.get("engagement_rate") or 0.0), source),
            "change_percent": data.get("change_percent") or {},
            "best_post": best})
    return {"platforms": platforms,
            "goal_posts": figure(goal, "Business_Goals.md: goals.social_posts_per_week") if goal else None}
