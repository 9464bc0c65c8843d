"""Page posts and Instagram media with their metrics, for the weekly summary: a page of 100 items per call,
each item's counts and insights asked in the same call by Graph field expansion (never one call per post).

Also the rule both this and the account insights follow when Graph refuses a metric (code 100): find which
one it was from Graph's text, drop it with a warning, and ask again without it, so that one retired metric
never blanks a report.

Pages are followed by the ``after`` cursor, or (time-paged Page feeds: no cursors) by the ``until`` and
``__paging_token`` that ``paging.next`` names; that URL itself is never requested: it carries the access token.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from social_media_integration.meta_errors import MetaParameterError, MetaResponseError

_LOGGER = logging.getLogger("social_media_integration.meta")

PAGE_SIZE = 100   # the most Graph gives per page of /posts and /media
MAX_PAGES = 200   # 20,000 posts in one window; past that an error, never a silently short sum
# Views replaced impressions on both (post_impressions* retired for all versions in 2025; Instagram's media
# `impressions` since v22.0): post_media_view is the Page post's count of views, `views` the media's.
PAGE_POST_METRICS = ("post_media_view",)
IG_MEDIA_METRICS = ("views", "reach", "saved", "shares")
REPLACED_BY = {"page_impressions": "page_media_view", "page_impressions_unique": "page_total_media_view_unique",
               "page_fans": "page_follows", "post_impressions": "post_media_view",
               "post_impressions_unique": "post_total_media_view_unique", "impressions": "views", "plays": "views"}
_RETIRED = re.compile(r"the (\w+) metric is no longer supported", re.I)
_INDEXED = re.compile(r"metric\[(\d+)\] must be one of", re.I)
_PAGE_FIELDS = ("id,message,created_time,permalink_url,shares,reactions.summary(total_count).limit(0),"
                "comments.summary(total_count).limit(0)")
_MEDIA_FIELDS = "id,caption,timestamp,permalink,like_count,comments_count"

_CARRIED = ("after", "until", "since", "__paging_token")  # what of paging.next says where the next page starts

Fetch = Callable[[str, dict[str, str]], dict[str, Any]]  # (fields, where the page starts) -> one page
Parse = Callable[[dict[str, Any], dict[str, int], datetime], dict[str, Any]]


def next_page(paging: Any) -> dict[str, str] | None:
    """Where the next page starts, or None on the last page (no ``next``; an empty page may still have one):
    the ``after`` cursor, else the position parameters of ``next`` (never its access_token, fields or limit)."""
    if not isinstance(paging, Mapping) or not paging.get("next"):
        return None
    after = (paging.get("cursors") or {}).get("after") if isinstance(paging.get("cursors"), Mapping) else None
    if after:
        return {"after": str(after)}
    query = parse_qs(urlsplit(str(paging["next"])).query)
    carried = {k: query[k][-1] for k in _CARRIED if query.get(k)}
    return carried or None


def refused_metric(text: str, names: Sequence[str]) -> str | None:
    """The metric Graph's refusal names (Instagram does; a Page does not), or None."""
    if (match := _RETIRED.search(text)) and match.group(1) in names:
        return match.group(1)
    if (match := _INDEXED.search(text)) and int(match.group(1)) < len(names):
        return names[int(match.group(1))]
    return None


def skip(name: str, node: str, reason: str) -> str:
    instead = f"; use {REPLACED_BY[name]}" if name in REPLACED_BY else ""
    _LOGGER.warning("Graph refused the %s insights metric %s (%s)%s; left out of the report", node, name, reason,
                    instead)
    return name


def page_posts(fetch: Fetch, *, since: float, until: float) -> list[dict[str, Any]]:
    """The Page's posts created in [since, until), with their counts (see ``_page_item``)."""
    return _collect(fetch, _PAGE_FIELDS, PAGE_POST_METRICS, "Page post", _page_item, since, until)


def instagram_media(fetch: Fetch, *, since: float, until: float) -> list[dict[str, Any]]:
    """The account's media published in [since, until), with their counts (see ``_media_item``)."""
    return _collect(fetch, _MEDIA_FIELDS, IG_MEDIA_METRICS, "Instagram media", _media_item, since, until)


def _collect(fetch: Fetch, base: str, metrics: Sequence[str], node: str,
             parse: Parse, since: float, until: float) -> list[dict[str, Any]]:
    """Every item of the list, page after page; kept when created in [since, until) (Graph is also told the
    window, but its edges are not exact about them). A refused metric costs one call more, once."""
    remaining, out, page, pages = list(metrics), [], {}, 0
    while True:
        if pages >= MAX_PAGES:
            what = "Page posts" if node == "Page post" else node  # "media" is already plural
            raise MetaResponseError(f"more than {MAX_PAGES * PAGE_SIZE:,} {what} between {_iso(since)} and "
                                    f"{_iso(until)}; ask for a shorter period")
        fields = base + (f",insights.metric({','.join(remaining)})" if remaining else "")
        try:
            body = fetch(fields, page)
        except MetaParameterError as err:
            text = err.meta_message or ""
            if not remaining or "metric" not in text.lower():
                raise
            named = refused_metric(text, remaining) or (remaining[0] if len(remaining) == 1 else None)
            dropped = [named] if named else list(remaining)  # unnamed among several: none can be trusted
            for name in dropped:
                remaining.remove(skip(name, node, text))
            continue  # the same page again, without it
        pages += 1
        for raw in body.get("data") or []:
            if not isinstance(raw, dict) or raw.get("id") is None:
                continue
            created = _parse_time(raw.get("created_time") or raw.get("timestamp"))
            if created is None:
                _LOGGER.warning("%s %s has no readable time; left out of the summary", node, raw.get("id"))
            elif since <= created.timestamp() < until:
                out.append(parse(raw, _insights(raw), created))
        page = next_page(body.get("paging"))
        if page is None:
            return out


# Reach is what the platform counts as seen: views (non-unique, like X's impressions), so the three platforms'
# reach adds up alike; engagement is every deliberate interaction the platform counts on the post: reactions +
# comments + shares on a Page post, likes + comments + saves + shares on Instagram (views and reach excluded).
def _page_item(raw: dict[str, Any], insights: dict[str, int], created: datetime) -> dict[str, Any]:
    details = {"reactions": _summary(raw.get("reactions")), "comments": _summary(raw.get("comments")),
               "shares": _int((raw.get("shares") or {}).get("count")),  # absent when nobody shared it
               "views": insights.get("post_media_view", 0)}
    return {"id": str(raw["id"]), "text": str(raw.get("message") or ""), "created": created,
            "url": raw.get("permalink_url"),
            "reach": details["views"], "engagement": details["reactions"] + details["comments"] + details["shares"],
            "details": details}


def _media_item(raw: dict[str, Any], insights: dict[str, int], created: datetime) -> dict[str, Any]:
    details = {"likes": _int(raw.get("like_count")), "comments": _int(raw.get("comments_count")),
               "saves": insights.get("saved", 0), "shares": insights.get("shares", 0),
               "views": insights.get("views", 0), "reach": insights.get("reach", 0)}
    return {"id": str(raw["id"]), "text": str(raw.get("caption") or ""), "created": created,
            "url": raw.get("permalink"),
            "reach": details["views"],
            "engagement": details["likes"] + details["comments"] + details["saves"] + details["shares"],
            "details": details}


def _insights(raw: dict[str, Any]) -> dict[str, int]:
    """{metric: lifetime value} of an expanded ``insights``; a metric without data yet is absent (0)."""
    out: dict[str, int] = {}
    for item in (raw.get("insights") or {}).get("data") or []:
        values = [v.get("value") for v in item.get("values") or [] if isinstance(v, dict)]
        if isinstance(item.get("total_value"), dict):
            values = [item["total_value"].get("value")]
        if item.get("name") and values:
            out[str(item["name"])] = _int(values[-1])
    return out


def _summary(edge: Any) -> int:
    return _int(((edge or {}).get("summary") or {}).get("total_count")) if isinstance(edge, dict) else 0


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, dict):  # a breakdown (by type): its total
        return sum(_int(v) for v in value.values())
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").astimezone(timezone.utc)
    except ValueError:
        return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
