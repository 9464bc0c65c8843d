"""The weekly summary of one platform, the same for X, Facebook and Instagram: posts, reach, engagement,
the best post and the change against the period before, as figures (kept for the CEO briefing) and as
``Social_Media_Summaries/YYYY-MM-DD_<platform>.md`` for the owner. Framework-free: the servers hand
in the posts with their metrics; nothing here calls a platform."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from core.documents import Document
from core.state import StateStore
from core.text import one_line
from core.vault import Vault

FOLDER = "Social_Media_Summaries"


@dataclass(frozen=True)
class Post:
    id: str
    text: str
    created: dt.datetime
    reach: int          # impressions or views, what the platform counts as seen
    engagement: int     # likes, replies, reposts, comments, shares, saves...
    url: str | None = None


def _totals(posts: list[Post]) -> dict[str, Any]:
    reach = sum(p.reach for p in posts)
    engagement = sum(p.engagement for p in posts)
    return {"posts": len(posts), "reach": reach, "engagement": engagement,
            "engagement_rate": round(engagement / reach, 4) if reach else 0.0}


def _change(now: float, before: float) -> float | None:
    return round((now - before) / before * 100, 1) if before else None


def summarise(platform: str, posts: Iterable[Post], *, end: dt.datetime, days: int = 7,
              account: dict[str, Any] | None = None) -> dict[str, Any]:
    """Figures for the ``days`` before ``end`` against the ``days`` before those."""
    start, previous_start = end - dt.timedelta(days=days), end - dt.timedelta(days=2 * days)
    items = list(posts)
    this = [p for p in items if start <= p.created < end]
    before = [p for p in items if previous_start <= p.created < start]
    now_totals, then_totals = _totals(this), _totals(before)
    best = max(this, key=lambda p: (p.engagement, p.reach), default=None)
    return {
        "platform": platform, "period": {"start": start.date().isoformat(), "end": end.date().isoformat(), "days": days},
        **now_totals,
        "previous": then_totals,
        "change_percent": {k: _change(now_totals[k], then_totals[k]) for k in ("posts", "reach", "engagement")},
        "best_post": None if best is None else {"id": best.id, "text": one_line(best.text)[:200], "url": best.url,
                                                "reach": best.reach, "engagement": best.engagement},
        "account": account or {},
    }


def _signed(value: float | None) -> str:
    return "new" if value is None else f"{value:+.1f}%"


def render(figures: dict[str, Any]) -> str:
    p, prev, change = figures, figures["previous"], figures["change_percent"]
    name = {"twitter": "X", "facebook": "Facebook", "instagram": "Instagram"}.get(p["platform"], p["platform"])
    lines = [f"# {name}: the week to {p['period']['end']}", "",
             "| | this week | the week before | change |", "|---|---|---|---|",
             f"| posts | {p['posts']} | {prev['posts']} | {_signed(change['posts'])} |",
             f"| reach | {p['reach']:,} | {prev['reach']:,} | {_signed(change['reach'])} |",
             f"| engagement | {p['engagement']:,} | {prev['engagement']:,} | {_signed(change['engagement'])} |",
             f"| engagement rate | {p['engagement_rate']:.1%} | {prev['engagement_rate']:.1%} | |", ""]
    best = p["best_post"]
    if best:
        link = f" ([open]({best['url']}))" if best.get("url") else ""
        lines += [f"**Best post:** “{best['text']}”{link}: reach {best['reach']:,}, engagement {best['engagement']:,}.", ""]
    else:
        lines += ["No post this week.", ""]
    for key, value in (p.get("account") or {}).items():
        lines.append(f"- {key.replace('_', ' ')}: {value:,}" if isinstance(value, int) else f"- {key}: {value}")
    meta = {"type": "social_summary", "platform": p["platform"], "period_start": p["period"]["start"],
            "period_end": p["period"]["end"], "posts": p["posts"], "reach": p["reach"], "engagement": p["engagement"]}
    return Document(meta, "\n".join(lines).rstrip() + "\n").render()


def write(vault: Vault, figures: dict[str, Any]) -> str:
    """The summary file (written again when asked again for the same day); its vault-relative path."""
    path = vault.folder(FOLDER) / f"{figures['period']['end']}_{figures['platform']}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    vault.write_atomic(path, render(figures), sync=False)
    return vault.relative(path)


def period_end(now: dt.datetime | None = None) -> dt.datetime:
    """A summary's period ends at today's midnight UTC: today is still being counted."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def report(vault: Vault, state: StateStore, platform: str, posts: Iterable[Post], *, end: dt.datetime, days: int,
           account: dict[str, Any] | None = None) -> dict[str, Any]:
    """The figures, written as the owner's summary file and kept for the CEO briefing
    (``summary:<platform>`` in the state store); with the file's vault-relative ``path``."""
    figures = summarise(platform, posts, end=end, days=days, account=account)
    path = write(vault, figures)
    state.cache_put(f"summary:{platform}", figures)
    return {**figures, "path": path}
