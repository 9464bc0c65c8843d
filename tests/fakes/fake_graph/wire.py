"""The aiohttp application of FakeGraph: path routing by node type, parameter and token handling, the handlers,
and the middleware that counts calls, injects failures, throttles, holds requests and adds the usage headers."""
from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import urlencode

from aiohttp import web

from tests.fakes.fake_graph.protocol import (MEDIA_FIELDS, POST_FIELDS, RATE_LIMITS, STATUS_TEXT, UNSUPPORTED,
                                             GraphError, _cursor, _graph_time, _pst, _uncursor)
from tests.fakes.fake_graph.server import Container, FakeGraph, Media, Post, Token, _Fault

FAKE = web.AppKey("fake_graph", FakeGraph)
PARAMS = web.RequestKey("graph_params", dict)
TOKEN = web.RequestKey("graph_token", Token)
RAW_TOKEN = web.RequestKey("graph_raw_token", str)


async def _params(request: web.Request) -> dict[str, str]:
    params = {k: v for k, v in request.query.items()}
    if request.content_type == "application/x-www-form-urlencoded" or request.content_type.startswith("multipart/"):
        params.update({k: str(v) for k, v in (await request.post()).items()})
    elif request.content_type == "application/json" and request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GraphError.named("invalid_parameter", message="(#100) Invalid JSON body")
        params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
    return params


def _authenticate(fake: FakeGraph, request: web.Request, params: dict[str, str], node: str) -> Token:
    header = request.headers.get("Authorization", "")
    raw = params.get("access_token") or (header.split(" ", 1)[1].strip() if header[:7] in ("Bearer ", "OAuth ")
                                         else "")
    if not raw:
        if node == "me":
            raise GraphError(400, 2500, "An active access token must be used to query information about the "
                                        "current user.")
        raise GraphError(400, 104, "An access token is required to request this resource.")
    request[RAW_TOKEN] = raw
    with fake._lock:
        token = fake._tokens.get(raw)
    if token is None:
        raise GraphError.named("invalid_token")
    if token.invalidated:
        raise GraphError.named("session_invalidated")
    if token.expires_at is not None and token.expires_at < time.time():
        message = (f"Error validating access token: Session has expired on {_pst(token.expires_at)}. The current "
                   f"time is {_pst(time.time())}.")
        raise GraphError.named("invalid_token", message=message, subcode=463,
                               headers={"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{message}"'})
    proof = params.get("appsecret_proof")
    expected = hmac.new(fake.app_secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
    if proof is not None and not hmac.compare_digest(proof, expected):
        raise GraphError(400, 100, "Invalid appsecret_proof provided in the API argument",
                         type_="GraphMethodException")
    if proof is None and fake.require_appsecret_proof:
        raise GraphError(400, 100, "API calls from the server require an appsecret_proof argument",
                         type_="GraphMethodException")
    return token


def _route(fake: FakeGraph, method: str, parts: list[str]) -> tuple[str, Any, str]:
    """(endpoint key, handler, node id) for a path below the version."""
    node = parts[0] if parts else ""
    with fake._lock:
        kind = ("me" if node == "me" else "page" if node in fake.pages else "ig" if node in fake._ig_pages
                else "container" if node in fake._containers else "media" if node in fake._media
                else "post" if any(p.id == node for pg in fake.pages.values() for p in pg.posts) else None)
    placeholder = {"page": "{page-id}", "ig": "{ig-user-id}", "container": "{container-id}", "media": "{ig-media-id}",
                   "post": "{post-id}", "me": "me"}.get(kind or "", "{id}")
    key = f"{method} /{placeholder}" + "".join(f"/{p}" for p in parts[1:])
    handler = HANDLERS.get(key)
    if handler is None:
        if kind is None or len(parts) == 1:
            raise GraphError(400, 100, UNSUPPORTED.format(method=method.lower(), id=node), 33,
                             type_="GraphMethodException")
        raise GraphError(400, 2500, "Unknown path components: /" + "/".join(parts[1:]))
    return key, handler, node


def _require_page_token(token: Token, page_id: str) -> None:
    if token.kind != "page" or token.page_id != page_id:
        raise GraphError.named("page_token_required")


def _require_ig_access(fake: FakeGraph, token: Token, ig_id: str) -> None:
    if token.kind == "page" and token.page_id != fake._ig_pages[ig_id]:
        raise GraphError(400, 10, "(#10) Application does not have permission for this action")


@dataclass(frozen=True)
class Field:
    """One entry of Graph's ``fields``: ``name[.modifier(args)]...[{subfields}]``, e.g.
    ``reactions.summary(total_count).limit(0)`` or ``insights.metric(views,reach)``."""
    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    subfields: str | None = None


_FIELD = re.compile(r"([A-Za-z_]\w*)((?:\.\w+\([^(){}]*\))*)(?:\{(.*)\})?", re.S)
_MODIFIER = re.compile(r"\.(\w+)\(([^(){}]*)\)")


def _parse_fields(spec: str) -> dict[str, Field]:
    """Split at the commas outside parentheses and braces, as Graph does (an argument list has commas too)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(spec + ","):
        depth += ch in "({"
        depth -= ch in ")}"
        if depth < 0:
            break
        if ch == "," and depth == 0:
            items.append((start, spec[start:i]))
            start = i + 1
    if depth != 0:
        raise GraphError(400, 2500, f'Syntax error "Expected end of string instead of unbalanced brackets." at '
                                    f"character {len(spec)}: {spec}")
    out: dict[str, Field] = {}
    for at, raw in items:
        text = raw.strip()
        if not text:
            continue
        match = _FIELD.fullmatch(text)
        if match is None:
            raise GraphError(400, 2500, f'Syntax error "Expected end of string instead of "{text[:1]}"." at '
                                        f"character {at}: {spec}")
        out[match.group(1)] = Field(match.group(1), dict(_MODIFIER.findall(match.group(2))), match.group(3))
    return out


def _expanded(params: dict[str, str], default: str) -> dict[str, Field]:
    return _parse_fields(params.get("fields", default))


def _fields(params: dict[str, str], default: str) -> list[str]:
    return list(_expanded(params, default))


def _nonexisting(fields: dict[str, Field], known: set[str], node_type: str) -> None:
    for name in fields:
        if name not in known:
            raise GraphError(400, 100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})")


def _limit(value: str | None, default: int) -> int:
    try:
        return max(0, min(int(value if value is not None else default), 100))
    except ValueError:
        raise GraphError(400, 100, "(#100) Param limit must be an integer") from None


def _edge(total: int, spec: Field, make: Callable[[int], dict], summary: dict[str, Any], url: str) -> dict:
    """An edge expanded on a node (reactions, comments): a first page of ``limit`` items (25 unless said;
    ``limit(0)``: none) and, with ``summary(true)`` or ``summary(total_count,...)``, the summary asked for."""
    data = [make(i) for i in range(min(_limit(spec.modifiers.get("limit"), 25), total))]
    out: dict[str, Any] = {"data": data}
    if data:
        out["paging"] = {"cursors": {"before": _cursor(0), "after": _cursor(len(data))}}
        if total > len(data):
            out["paging"]["next"] = f"{url}?limit={len(data)}&after={_cursor(len(data))}"
    wanted = spec.modifiers.get("summary", "false").strip().lower()
    if wanted in ("true", "1"):
        out["summary"] = dict(summary)
    elif wanted not in ("false", "0", ""):
        out["summary"] = {k: summary[k] for k in (w.strip() for w in wanted.split(",")) if k in summary}
    return out


def _blocked(fake: FakeGraph, *texts: str | None) -> None:
    if any(term in (text or "") for term in fake.blocked_terms for text in texts):
        raise GraphError.named("policy_block")


# --- handlers -------------------------------------------------------------------------------------


async def me(fake: FakeGraph, request: web.Request, node: str) -> dict:
    token = request[TOKEN]
    if token.kind == "page":
        page = fake.pages[token.page_id]
        return {"name": page.name, "id": page.id}
    return {"name": "Owner of Acme", "id": "10000000000000001"}


async def me_accounts(fake: FakeGraph, request: web.Request, node: str) -> dict:
    if request[TOKEN].kind == "page":
        raise GraphError(400, 100, "(#100) Tried accessing nonexisting field (accounts) on node type (Page)")
    fields = _fields(request[PARAMS], "access_token,category,category_list,name,id,tasks")
    data = []
    with fake._lock:
        for page in fake.pages.values():
            full = {"access_token": page.access_token, "category": page.category,
                    "category_list": [{"id": "2201", "name": page.category}], "name": page.name, "id": page.id,
                    "tasks": ["ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE"]}
            if page.ig_id:
                full["instagram_business_account"] = {"id": page.ig_id}
            data.append({k: v for k, v in full.items() if k in fields or k == "id"})
    return {"data": data, "paging": {"cursors": {"before": _cursor(0), "after": _cursor(len(data))}}}


async def get_page(fake: FakeGraph, request: web.Request, node: str) -> dict:
    page = fake.pages[node]
    full = {"id": page.id, "name": page.name, "category": page.category}
    if page.ig_id:
        full["instagram_business_account"] = {"id": page.ig_id}
    if request[TOKEN].kind == "user":
        full["access_token"] = page.access_token
    fields = _fields(request[PARAMS], "name,id")
    return {k: v for k, v in full.items() if k in fields or k == "id"}


def _insight(node: str, metric: str, value: Any, description: str) -> dict:
    return {"name": metric, "period": "lifetime", "values": [{"value": value}],
            "title": f"Lifetime {metric.replace('_', ' ')}", "description": f"Lifetime: {description}",
            "id": f"{node}/insights/{metric}/lifetime"}


def _post_insights(fake: FakeGraph, post: Post, spec: Field) -> dict:
    """``insights.metric(...)`` on a post: lifetime figures; a refused metric fails the whole request with the
    Page answer that names no metric (as GET /{page-id}/insights does)."""
    metrics = [m.strip() for m in spec.modifiers.get("metric", "").split(",") if m.strip()]
    if not metrics:
        raise GraphError(400, 3001, "No metric was specified to be fetched. Please specify one or more metrics to "
                                    "be fetched and try again.", 1504028)
    refused = [m for m in metrics if m not in fake.post_metrics]
    if refused:
        fake.refused_metrics += [(post.id, m, "retired" if m in fake.retired_post_metrics else "unknown")
                                 for m in refused]
        raise GraphError.named("invalid_metric")
    c = post.metrics
    values = {"post_media_view": c["views"], "post_total_media_view_unique": c["reach"],
              "post_reactions_by_type_total": {"like": c["reactions"]} if c["reactions"] else {},
              "post_activity_by_action_type": {k: v for k, v in (("comment", c["comments"]), ("share", c["shares"]),
                                                                 ("like", c["reactions"])) if v}}
    return {"data": [_insight(post.id, m, values.get(m, 0), m) for m in metrics]}


def _post_json(fake: FakeGraph, post: Post, fields: dict[str, Field], token: Token | None = None) -> dict:
    _nonexisting(fields, POST_FIELDS, "PagePost")
    c = post.metrics
    full: dict[str, Any] = {"id": post.id, "message": post.message, "created_time": _graph_time(post.created),
                            "permalink_url": f"https://www.facebook.com/{post.id.replace('_', '/posts/')}"}
    if post.link:
        full["link"] = post.link
    if c["shares"]:  # Graph leaves ``shares`` out of a post nobody shared
        full["shares"] = {"count": c["shares"]}
    if "reactions" in fields:
        full["reactions"] = _edge(c["reactions"], fields["reactions"],
                                  lambda i: {"id": str(10**14 + i), "name": f"Reader {i}", "type": "LIKE"},
                                  {"total_count": c["reactions"], "viewer_reaction": "NONE"},
                                  f"{fake.base_url}/{post.id}/reactions")
    if "comments" in fields:
        story = post.id.partition("_")[2]
        full["comments"] = _edge(c["comments"], fields["comments"],
                                 lambda i: {"id": f"{story}_{10**15 + i}", "message": f"Comment {i}",
                                            "created_time": _graph_time(post.created)},
                                 {"order": "ranked", "total_count": c["comments"], "can_comment": True},
                                 f"{fake.base_url}/{post.id}/comments")
    if "insights" in fields:
        if token is None or token.kind != "page":
            raise GraphError.named("page_token_required")
        full["insights"] = _post_insights(fake, post, fields["insights"])
    return {k: v for k, v in full.items() if k in fields or k == "id"}


_PAGING_PARAMS = {"access_token", "after", "before", "limit", "__paging_token", "__previous"}


def _page_of(items: list, request: web.Request, url: str, render, time_paged: bool = False) -> dict:
    """One page of a list (``items`` as selected by since/until, newest first). Cursor-paged: ``paging.cursors``
    and a ``next`` with ``after``. Time-paged (``time_paged``, what Page feeds answer): no cursors, a ``next``
    with ``until`` (the oldest time on the page) and ``__paging_token`` (where in that second to go on), and a
    ``previous`` with ``since``. Either ``next`` is the same query with the access token in it, as Graph's."""
    params = request[PARAMS]
    limit = max(1, _limit(params.get("limit"), 25))
    if time_paged:
        start = 0
        if "__paging_token" in params:  # after the item it names (items of the same second come in id order)
            last = _unpaging_token(params["__paging_token"])
            start = next((i + 1 for i, item in enumerate(items) if item.id == last), 0)
    else:
        start = _uncursor(params["after"]) if "after" in params else 0
    chunk = items[start:start + limit]
    out: dict[str, Any] = {"data": [render(i) for i in chunk]}
    if not chunk:
        return out
    query = {k: v for k, v in params.items() if k not in _PAGING_PARAMS | ({"until"} if time_paged else set())}
    query.update(access_token=request[RAW_TOKEN], limit=str(limit))
    more = start + len(chunk) < len(items)
    if time_paged:
        newest, oldest = chunk[0], chunk[-1]
        backwards = {k: v for k, v in query.items() if k != "since"}
        backwards.update(since=int(newest.created.timestamp()), __paging_token=_paging_token(newest.id), __previous=1)
        out["paging"] = {"previous": f"{url}?{urlencode(backwards)}"}
        if more:
            query.update(until=int(oldest.created.timestamp()), __paging_token=_paging_token(oldest.id))
            out["paging"]["next"] = f"{url}?{urlencode(query)}"
        return out
    out["paging"] = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(chunk))}}
    if more:
        query["after"] = _cursor(start + len(chunk))
        out["paging"]["next"] = f"{url}?{urlencode(query)}"
    return out


def _paging_token(item_id: str) -> str:
    return "enc_" + base64.urlsafe_b64encode(json.dumps({"id": item_id}).encode()).decode().rstrip("=")


def _unpaging_token(value: str) -> str:
    try:
        raw = value.removeprefix("enc_")
        return str(json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))["id"])
    except (ValueError, KeyError, TypeError):
        raise GraphError.named("invalid_parameter", message="(#100) Invalid paging token") from None


def _window(params: dict[str, str]) -> tuple[float, float]:
    """since/until (a Unix timestamp or a date), both ends included."""
    since = _timestamp(params["since"], "since") if "since" in params else float("-inf")
    until = _timestamp(params["until"], "until") if "until" in params else float("inf")
    return since, until


def _within(newest_first: list, since: float, until: float) -> list:
    """The slice of a newest-first list created in [since, until] (bisect: a list of 10,000 costs no scan)."""
    key = lambda item: -item.created.timestamp()  # noqa: E731 - ascending for bisect
    return newest_first[bisect.bisect_left(newest_first, -until, key=key):
                        bisect.bisect_right(newest_first, -since, key=key)]


async def page_feed(fake: FakeGraph, request: web.Request, node: str) -> dict:
    """GET /{page-id}/feed and /{page-id}/posts (the fake's Page has only its own posts, so both are the same)."""
    params = request[PARAMS]
    fields = _expanded(params, "created_time,message,id")
    edge, (since, until) = request.path.rsplit("/", 1)[1], _window(params)
    with fake._lock:
        posts = _within(fake.pages[node].posts, since, until)
        return _page_of(posts, request, f"{fake.base_url}/{node}/{edge}",
                        lambda p: _post_json(fake, p, fields, request[TOKEN]), fake.feed_paging == "time")


async def page_publish(fake: FakeGraph, request: web.Request, node: str) -> dict:
    _require_page_token(request[TOKEN], node)
    params, photo = request[PARAMS], request.path.endswith("/photos")
    message = params.get("message", params.get("caption", ""))
    link = params.get("url") if photo else params.get("link")
    if photo and not link:
        raise GraphError(400, 324, "(#324) Requires upload file")
    if not photo and not message and not link:
        raise GraphError(400, 100, "(#100) Missing message or attachment")
    _blocked(fake, message, link)
    with fake._lock:
        page = fake.pages[node]
        since = datetime.now(timezone.utc) - timedelta(seconds=fake.duplicate_window)
        if not photo and any(p.message == message and p.link == link and p.created >= since for p in page.posts):
            raise GraphError.named("duplicate_post")
        photo_id = str(next(fake._ids)) if photo else None
        post = fake._post(page, message, None if photo else link, None, photo_id)
    return {"id": photo_id, "post_id": post.id} if photo else {"id": post.id}


async def ig_create_container(fake: FakeGraph, request: web.Request, node: str) -> dict:
    _require_ig_access(fake, request[TOKEN], node)
    params = request[PARAMS]
    media_type = params.get("media_type", "")
    if params.get("video_url"):
        if media_type not in ("REELS", "STORIES", "VIDEO"):
            raise GraphError(400, 100, "(#100) The parameter media_type is required for a video_url; use REELS "
                                       "or STORIES")
        url = params["video_url"]
    elif params.get("image_url"):
        if media_type not in ("", "IMAGE", "STORIES"):
            raise GraphError(400, 100, f"(#100) Param media_type {media_type} is not valid for image_url")
        url, media_type = params["image_url"], media_type or "IMAGE"
    else:
        raise GraphError(400, 100, "(#100) The parameter image_url is required.")
    caption = params.get("caption", "")
    _blocked(fake, caption, url)
    with fake._lock:
        outcome, polls, error_code = fake._outcomes.pop(0) if fake._outcomes else ("FINISHED", None, 0)
        container = Container(str(next(fake._ids)), node, media_type, url, caption,
                              fake.polls_in_progress if polls is None else polls, outcome, error_code)
        fake._containers[container.id] = container
    return {"id": container.id}


async def get_container(fake: FakeGraph, request: web.Request, node: str) -> dict:
    fields = _fields(request[PARAMS], "id")
    with fake._lock:
        c = fake._containers[node]
        _require_ig_access(fake, request[TOKEN], c.ig_id)
        if "status_code" in fields or "status" in fields:  # a status poll
            if c.status == "IN_PROGRESS":
                if c.polls_left <= 0:
                    c.status = c.outcome
                else:
                    c.polls_left -= 1
        full = {"status_code": c.status, "status": STATUS_TEXT[c.status].format(code=c.error_code), "id": c.id}
    return {k: v for k, v in full.items() if k in fields or k == "id"}


async def ig_publish(fake: FakeGraph, request: web.Request, node: str) -> dict:
    _require_ig_access(fake, request[TOKEN], node)
    creation_id = request[PARAMS].get("creation_id", "")
    with fake._lock:
        c = fake._containers.get(creation_id)
        if c is None or c.ig_id != node:
            raise GraphError(400, 100, f"(#100) Param creation_id must be a valid media container id, got "
                                       f"'{creation_id}'")
        if c.status == "PUBLISHED":
            raise GraphError(400, 100, "(#100) The media container has already been published")
        if c.status != "FINISHED":
            raise GraphError(400, 9007, "Media ID is not available", 2207027, error_user_title="Media not ready",
                             error_user_msg="The media is not ready for publishing, please wait for a moment")
        if fake._quota_used(node) >= fake.quota_total:
            raise GraphError(400, 9, "Application request limit reached", 2207042,
                             error_user_title="Cannot publish posts",
                             error_user_msg="You reached maximum number of posts that is allowed to be published "
                                            "by Content Publishing API.")
        media = fake._publish_media(node, c.caption, c.media_type)
        c.status, c.media_id = "PUBLISHED", media.id
    return {"id": media.id}


def _media_insights(fake: FakeGraph, m: Media, spec: Field) -> dict:
    """``insights.metric(...)`` on media: lifetime figures; a refused metric fails the whole request, named by
    its index (Graph answers so for a retired one too, e.g. plays)."""
    metrics = [x.strip() for x in spec.modifiers.get("metric", "").split(",") if x.strip()]
    if not metrics:
        raise GraphError(400, 100, "(#100) The parameter metric is required")
    for i, name in enumerate(metrics):
        if name not in fake.ig_media_metrics:
            fake.refused_metrics.append((m.id, name, "unknown"))
            raise GraphError(400, 100, f"(#100) metric[{i}] must be one of the following values: "
                                       + ", ".join(fake.ig_media_metrics))
    c = m.metrics
    values = {"views": c["views"], "reach": c["reach"], "saved": c["saves"], "shares": c["shares"],
              "likes": c["likes"], "comments": c["comments"],
              "total_interactions": c["likes"] + c["comments"] + c["saves"] + c["shares"]}
    return {"data": [_insight(m.id, name, values.get(name, 0), name) for name in metrics]}


def _media_json(fake: FakeGraph, m: Media, fields: dict[str, Field]) -> dict:
    _nonexisting(fields, MEDIA_FIELDS, "ShadowIGMedia")
    path = "reel" if m.product == "REELS" else "p"
    full = {"id": m.id, "caption": m.caption, "media_type": m.media_type, "media_product_type": m.product,
            "permalink": f"https://www.instagram.com/{path}/{m.shortcode}/", "shortcode": m.shortcode,
            "timestamp": _graph_time(m.created), "like_count": m.metrics["likes"],
            "comments_count": m.metrics["comments"]}
    if "insights" in fields:
        full["insights"] = _media_insights(fake, m, fields["insights"])
    return {k: v for k, v in full.items() if k in fields or k == "id"}


async def ig_media_list(fake: FakeGraph, request: web.Request, node: str) -> dict:
    """Newest first; since/until select by timestamp (time-based paging), the cursor pages within them."""
    _require_ig_access(fake, request[TOKEN], node)
    params = request[PARAMS]
    fields, (since, until) = _expanded(params, "id"), _window(params)
    with fake._lock:
        items = _within(fake._media_newest_first(node), since, until)
        return _page_of(items, request, f"{fake.base_url}/{node}/media", lambda m: _media_json(fake, m, fields))


async def get_media(fake: FakeGraph, request: web.Request, node: str) -> dict:
    with fake._lock:
        media = fake._media[node]
        _require_ig_access(fake, request[TOKEN], media.ig_id)
        return _media_json(fake, media, _expanded(request[PARAMS], "id"))


async def get_post(fake: FakeGraph, request: web.Request, node: str) -> dict:
    with fake._lock:
        post = next(p for pg in fake.pages.values() for p in pg.posts if p.id == node)
        return _post_json(fake, post, _expanded(request[PARAMS], "created_time,message,id"), request[TOKEN])


async def publishing_limit(fake: FakeGraph, request: web.Request, node: str) -> dict:
    _require_ig_access(fake, request[TOKEN], node)
    fields = _fields(request[PARAMS], "quota_usage")
    with fake._lock:
        full = {"config": {"quota_total": fake.quota_total, "quota_duration": fake.quota_duration},
                "quota_usage": fake._quota_used(node)}
    return {"data": [{k: v for k, v in full.items() if k in fields}]}


def _day(value: str, name: str) -> date:
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value), timezone.utc).date()
        return date.fromisoformat(value[:10])
    except ValueError:
        raise GraphError(400, 100, f"(#100) The {name} parameter is not a valid date or timestamp") from None


def _timestamp(value: str, name: str) -> float:
    if value.isdigit():
        return float(value)
    return datetime.combine(_day(value, name), datetime.min.time(), timezone.utc).timestamp()


def _series(fake: FakeGraph, node: str, metric: str, days: list[date]) -> list[int]:
    values = fake._insights.get((node, metric), 0)
    return [values if isinstance(values, int) else values.get(d, 0) for d in days]


def _insight_days(params: dict[str, str], max_days: int) -> list[date]:
    today = datetime.now(timezone.utc).date()
    until = _day(params["until"], "until") if "until" in params else today
    since = _day(params["since"], "since") if "since" in params else until - timedelta(days=2)
    if (until - since).days > max_days:
        raise GraphError(400, 100, f"(#100) There cannot be more than {max_days} days ({max_days * 86400} s) "
                                   "between since and until")
    return [since + timedelta(days=i) for i in range((until - since).days)]


async def page_insights(fake: FakeGraph, request: web.Request, node: str) -> dict:
    _require_page_token(request[TOKEN], node)
    params = request[PARAMS]
    metrics = [m for m in params.get("metric", "").split(",") if m]
    if not metrics:
        raise GraphError(400, 3001, "No metric was specified to be fetched. Please specify one or more metrics to "
                                    "be fetched and try again.", 1504028)
    refused = [m for m in metrics if m not in fake.page_metrics]
    if refused:  # retired and unknown names get one answer, and it names neither; the fake logs which
        with fake._lock:
            fake.refused_metrics += [(node, m, "retired" if m in fake.retired_page_metrics else "unknown")
                                     for m in refused]
        raise GraphError.named("invalid_metric")
    period, days = params.get("period", "day"), _insight_days(params, 90)
    with fake._lock:
        data = [{"name": m, "period": period,
                 "values": [{"value": v, "end_time": f"{d + timedelta(days=1)}T08:00:00+0000"}
                            for d, v in zip(days, _series(fake, node, m, days))],
                 "title": m.replace("_", " ").title(), "description": f"Daily: {m}", "id": f"{node}/insights/{m}/{period}"}
                for m in metrics]
    return {"data": data, "paging": {"previous": f"{fake.base_url}/{node}/insights?metric={','.join(metrics)}",
                                     "next": f"{fake.base_url}/{node}/insights?metric={','.join(metrics)}"}}


async def ig_insights(fake: FakeGraph, request: web.Request, node: str) -> dict:
    _require_ig_access(fake, request[TOKEN], node)
    params = request[PARAMS]
    metrics = [m for m in params.get("metric", "").split(",") if m]
    for i, m in enumerate(metrics):
        if m in fake.retired_ig_metrics:
            fake.refused_metrics.append((node, m, "retired"))
            raise GraphError(400, 100, fake.retired_ig_metrics[m])
        if m not in fake.ig_metrics:
            fake.refused_metrics.append((node, m, "unknown"))
            raise GraphError(400, 100, f"(#100) metric[{i}] must be one of the following values: "
                                       + ", ".join(fake.ig_metrics))
    total = params.get("metric_type") == "total_value"
    needs_total = [m for m in metrics if m in fake.ig_total_value_only]
    if needs_total and not total:
        raise GraphError(400, 100, f"(#100) The following metrics ({','.join(needs_total)}) should be specified "
                                   "with parameter metric_type=total_value")
    period, days = params.get("period", "day"), _insight_days(params, 30)
    out = []
    with fake._lock:
        for m in metrics:
            item: dict[str, Any] = {"name": m, "period": period, "title": m.replace("_", " ").title(),
                                    "description": f"Instagram {m}", "id": f"{node}/insights/{m}/{period}"}
            series = _series(fake, node, m, days)
            if total:
                item["total_value"] = {"value": sum(series)}
            else:
                item["values"] = [{"value": v, "end_time": f"{d + timedelta(days=1)}T07:00:00+0000"}
                                  for d, v in zip(days, series)]
            out.append(item)
    return {"data": out}


HANDLERS = {
    "GET /me": me, "GET /me/accounts": me_accounts, "GET /{page-id}": get_page,
    "GET /{page-id}/feed": page_feed, "GET /{page-id}/posts": page_feed, "POST /{page-id}/feed": page_publish,
    "POST /{page-id}/photos": page_publish,
    "GET /{page-id}/insights": page_insights, "POST /{ig-user-id}/media": ig_create_container,
    "GET /{ig-user-id}/media": ig_media_list, "POST /{ig-user-id}/media_publish": ig_publish,
    "GET /{ig-user-id}/content_publishing_limit": publishing_limit, "GET /{ig-user-id}/insights": ig_insights,
    "GET /{container-id}": get_container, "GET /{ig-media-id}": get_media, "GET /{post-id}": get_post,
}
ROUTE = web.RequestKey("graph_route", tuple)


async def _dispatch(request: web.Request) -> web.Response:
    key, handler, node = request[ROUTE]
    return web.json_response(await handler(request.app[FAKE], request, node))


@web.middleware
async def _graph_middleware(request: web.Request, handler) -> web.StreamResponse:
    fake: FakeGraph = request.app[FAKE]
    parts = [p for p in request.path.split("/") if p]
    token: Token | None = None
    node = key = None
    try:
        if not parts or parts[0] != fake.version:
            raise GraphError(400, 2500, "Unknown path components: /" + "/".join(parts))
        key, route_handler, node = _route(fake, request.method, parts[1:])
        request[ROUTE] = (key, route_handler, node)
        params = request[PARAMS] = await _params(request)
        with fake._lock:
            fake.calls[key] += 1
            fake.requests.append({"key": key, "method": request.method, "path": request.path, "params": params})
        token = request[TOKEN] = _authenticate(fake, request, params, node)
        fault = fake._take_fault(key)
        if fault is not None and not fault.after_accept:
            return _fault(request, fault)
        if fake._throttle is not None:
            err = GraphError.named(RATE_LIMITS[fake._throttle][0])
            err.regain_minutes = fake.usage[RATE_LIMITS[fake._throttle][1]]["estimated_time_to_regain_access"]
            raise err
        hold = fake._take_hold(lambda h: h.match == key and not h.after)
        if hold is not None:
            await hold.wait(request, params)
            if hold.client_gone():
                hold.abandoned = True
                return web.Response(status=499)
        response = await handler(request)
        if fault is not None:
            return _fault(request, fault)
        hold = fake._take_hold(lambda h: h.match == key and h.after)
        if hold is not None:
            await hold.wait(request, params)
        error = None
    except GraphError as err:
        error = err
    except (KeyError, StopIteration):  # an id that names nothing this token can see
        error = GraphError(400, 100, UNSUPPORTED.format(method=request.method.lower(), id=node or ""), 33,
                           type_="GraphMethodException")
    if error is not None:
        response = web.json_response(error.body(), status=error.status, headers=error.headers)
    response.headers.update(fake._usage_headers(token, node, error))
    return response


def _fault(request: web.Request, fault: _Fault) -> web.StreamResponse:
    """Raise the injected error (answered with its usage headers), or drop the connection."""
    if fault.error is not None:
        raise fault.error
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


def create_app(fake: FakeGraph) -> web.Application:
    app = web.Application(middlewares=[_graph_middleware])
    app[FAKE] = fake
    app.router.add_route("*", "/{tail:.*}", _dispatch)
    return app

