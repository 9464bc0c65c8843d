"""The Facebook Page and Instagram calls the suite makes on the Graph API, as plain dicts.

Framework-free: it knows nothing of servers, the vault or the outbox. Writes are never retried here: a
timeout is an unknown outcome (``MetaConnectionError.outcome_unknown``) that the caller reconciles with
``find_page_post`` / ``find_instagram_media`` before anything is sent again (DESIGN §8). Instagram publishing
is container → poll ``status_code`` → ``media_publish``; the container id lives in a caller's store
(``ContainerMemory``) from creation to publication, so a crash in between resumes that container instead of
creating a second one.
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, TypeVar, cast

import requests

from core.errors import NotConfiguredError, ValidationError
from social_media_integration import meta_lists
from social_media_integration.meta_config import MetaConfig
from social_media_integration.meta_errors import (MetaAuthError, MetaConnectionError, MetaError, MetaParameterError,
                                                  MetaResponseError)
from social_media_integration.meta_lists import (PAGE_SIZE, REPLACED_BY, next_page,  # noqa: F401 (re-exported)
                                                 refused_metric, skip)
from social_media_integration.meta_transport import GraphTransport

_LOGGER = logging.getLogger("social_media_integration.meta")
T = TypeVar("T")
ContainerStatus = Literal["IN_PROGRESS", "FINISHED", "ERROR", "EXPIRED", "PUBLISHED"]

# Metrics the current Graph (v26.0) accepts: `views` replaced `impressions` (Page: page_media_view, Nov 2025;
# Instagram: views, v22.0), page_follows replaced page_fans (Pages API changelog).
DEFAULT_PAGE_METRICS = ("page_media_view", "page_total_media_view_unique", "page_post_engagements", "page_follows",
                        "page_daily_follows_unique")
DEFAULT_IG_METRICS = ("views", "reach", "accounts_engaged", "total_interactions", "likes", "comments", "shares",
                      "saves")
LAST_VALUE = frozenset({"page_follows"})  # a daily running total, not a daily count: the last day is the figure
MAX_DAYS = {"page": 90, "instagram": 30}  # Graph's longest since..until window per node type
POLL_DELAYS = (2.0, 3.0, 5.0, 10.0, 15.0, 30.0)  # then every 30 s: images finish in seconds, videos in minutes
RECONCILE_WINDOW_S = 2 * 86400  # a container expires after 24 h, so what it published is at most that old (+margin)
MAX_LIST_PAGES = 5  # feed/media searches and me/accounts: at most this many pages of 100
_GRAPH_ID = re.compile(r"\d{1,32}(_\d{1,32})?")


class ContainerMemory(Protocol):
    """Where one post's pending Instagram container id is kept (the state store, per idempotency key)."""

    def get(self) -> str | None: ...

    def set(self, container_id: str | None) -> None: ...


class MetaConnector:
    """Synchronous Graph client. Thread-safe. ``clock`` (epoch seconds) and ``sleep`` are injectable so tests
    never wait; the clock is wall time because it also dates searches and insights windows."""

    def __init__(self, config: MetaConfig, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], object] = time.sleep) -> None:
        self.config = config
        self._session = session or requests.Session()
        self._owns_session = session is None
        self._http = GraphTransport(config, self._session)
        self._clock, self._sleep = clock, sleep
        self._token_lock = threading.Lock()
        self._derived_page_token: str | None = None

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def is_configured(self) -> bool:
        return self.config.is_configured()

    def usage(self) -> dict[str, Any]:
        """The last usage headers Graph sent (app, page, business_use_case), for health and the Dashboard."""
        return self._http.usage()

    def probe(self) -> dict[str, Any]:
        """One cheap call that proves the token works (and the Page token, when a Page is configured)."""
        token = self.config.access_token or self.config.page_access_token
        if not token:
            raise NotConfiguredError("Meta is not configured: set META_ACCESS_TOKEN")
        me = self._http.get("me", token=token, where="the token check (me)", fields="id,name")
        info: dict[str, Any] = {"graph_version": self.config.graph_version, "account": me.get("name"),
                                "account_id": me.get("id")}
        if self.config.page_id:
            self.page_token()
            info["page_id"] = self.config.page_id
        if self.config.instagram_account_id:
            info["instagram_account_id"] = self.config.instagram_account_id
        return info

    # -- tokens -------------------------------------------------------------------------------------
    def page_token(self) -> str:
        """META_PAGE_ACCESS_TOKEN, or the Page's token from the user token's me/accounts (asked once, cached)."""
        if self.config.page_access_token:
            return self.config.page_access_token
        with self._token_lock:  # one lookup even when several threads post at once
            if self._derived_page_token is None:
                self._derived_page_token = self._derive_page_token()
            return self._derived_page_token

    def _derive_page_token(self) -> str:
        page_id, user = self._page_id(), self._user_token()
        for account in self._paged("me/accounts", token=user, where="the Page token lookup (me/accounts)",
                                   fields="id,access_token"):
            if str(account.get("id")) == page_id and account.get("access_token"):
                token = str(account["access_token"])
                self._http.remember_secret(token)
                return token
        raise MetaAuthError(f"the Meta user behind META_ACCESS_TOKEN does not manage Page {page_id} (or the token "
                            "lacks pages_show_list): check FACEBOOK_PAGE_ID, or set META_PAGE_ACCESS_TOKEN")

    def _with_page_token(self, call: Callable[[str], T]) -> T:
        try:
            return call(self.page_token())
        except MetaAuthError:
            with self._token_lock:  # a derived token that stopped working is asked for again next time
                self._derived_page_token = None
            raise

    def _user_token(self) -> str:
        if not self.config.access_token:
            raise NotConfiguredError("Meta is not configured: set META_ACCESS_TOKEN (or META_PAGE_ACCESS_TOKEN)")
        return self.config.access_token

    def _ig_token(self) -> str:
        # Instagram publishing and insights take the user token; a Page token of the linked Page works too.
        return self.config.access_token or self.page_token()

    def _page_id(self) -> str:
        if not self.config.page_id:
            raise NotConfiguredError("Facebook is not configured: set FACEBOOK_PAGE_ID")
        return self.config.page_id

    def _ig_id(self) -> str:
        if not self.config.instagram_account_id:
            raise NotConfiguredError("Instagram is not configured: set INSTAGRAM_ACCOUNT_ID")
        return self.config.instagram_account_id

    # -- Facebook Page ------------------------------------------------------------------------------
    def post_page(self, message: str, *, link: str | None = None, image_url: str | None = None) -> dict[str, str]:
        """One Page post (text, link, or photo with ``message`` as caption) → {id, url}. Never retried here."""
        page_id = self._page_id()
        if link and image_url:
            raise ValidationError("a Page post carries a link or a photo, not both", field="link")
        if not (message or "").strip() and not link and not image_url:
            raise ValidationError("a Page post needs a message, a link or a photo", field="message")
        if image_url:
            body = self._with_page_token(lambda token: self._http.post(
                f"{page_id}/photos", token=token, where="the Facebook photo post", url=image_url, caption=message))
            post_id = str(body.get("post_id") or f"{page_id}_{body['id']}")  # "id" is the photo, post_id the story
        else:
            body = self._with_page_token(lambda token: self._http.post(
                f"{page_id}/feed", token=token, where="the Facebook Page post", message=message or None, link=link))
            post_id = str(body["id"])
        return {"id": post_id, "url": _post_url(post_id)}

    def find_page_post(self, text: str, *, since: datetime | float) -> str | None:
        """The id of the Page post published since ``since`` with exactly ``text`` as its message, or None."""
        wanted = _normal(text)
        if not wanted:
            raise ValidationError("a post is looked for by its text", field="text")
        page_id = self._page_id()
        return self._with_page_token(lambda token: next(
            (str(post["id"]) for post in self._paged(f"{page_id}/feed", token=token, where="the Page feed search",
                                                     fields="id,message,created_time", since=int(_epoch(since)))
             if _normal(post.get("message")) == wanted), None))  # stops at the first match: no page more

    # -- Instagram ----------------------------------------------------------------------------------
    def create_container(self, *, image_url: str | None = None, video_url: str | None = None, caption: str) -> str:
        if bool(image_url) == bool(video_url):
            raise ValidationError("an Instagram post needs exactly one of image_url and video_url", field="image_url")
        # A feed video is a Reel since 2023 (media_type VIDEO is gone); an image needs no media_type.
        body = self._http.post(f"{self._ig_id()}/media", token=self._ig_token(), where="the Instagram container",
                               image_url=image_url, video_url=video_url, caption=caption,
                               media_type="REELS" if video_url else None)
        return str(body["id"])

    def container_status(self, container_id: str) -> ContainerStatus:
        return cast(ContainerStatus, self._container_state(container_id)[0])

    def _container_state(self, container_id: str) -> tuple[str, str]:
        body = self._http.get(_graph_id(container_id, "container id"), token=self._ig_token(),
                              where="the Instagram container status", fields="status_code,status")
        return str(body.get("status_code") or ""), str(body.get("status") or "")

    def publish_container(self, container_id: str) -> str:
        body = self._http.post(f"{self._ig_id()}/media_publish", token=self._ig_token(),
                               where="the Instagram publication", creation_id=_graph_id(container_id, "container id"))
        return str(body["id"])

    def publish_instagram(self, *, image_url: str | None = None, video_url: str | None = None, caption: str,
                          pending: ContainerMemory, deadline_s: float = 300.0) -> dict[str, Any]:
        """Publish once → {id, container_id, permalink}. A container left in ``pending`` by an earlier attempt
        is polled and published instead of creating a second one; on timeout it stays there for the next try."""
        container, state = pending.get(), None
        if container:
            _LOGGER.info("resuming Instagram container %s", container)
            try:
                state = self._container_state(container)
            except MetaParameterError:  # Graph no longer knows it, so it published nothing: start afresh
                _LOGGER.warning("Instagram container %s is unknown to Graph; creating a new one", container)
                pending.set(None)
        if state is None:
            # Remembered before anything else: a crash from here on resumes this container, never makes a second.
            container = self.create_container(image_url=image_url, video_url=video_url, caption=caption)
            pending.set(container)
            state = self._container_state(container)
        started = self._clock()
        delays = _delays()
        while state[0] != "FINISHED":
            if state[0] == "PUBLISHED":  # published before a crash or a lost answer: find what it became
                return self._published_earlier(container, caption, pending)
            if state[0] in ("ERROR", "EXPIRED"):
                pending.set(None)  # nothing went out; the next attempt starts with a new container
                raise MetaResponseError(f"Instagram container {container} ended {state[0]}: {state[1] or 'no reason'}")
            waited = self._clock() - started
            if waited >= deadline_s:
                raise MetaConnectionError(f"Instagram container {container} still {state[0] or 'IN_PROGRESS'} after "
                                          f"{waited:.0f} s; it is kept and resumed on the next attempt")
            self._sleep(min(next(delays), deadline_s - waited))
            state = self._container_state(container)
        media_id = self.publish_container(container)  # a timeout here: PUBLISHED on the next attempt, found then
        pending.set(None)
        return {"id": media_id, "container_id": container, "permalink": self._permalink(media_id)}

    def _published_earlier(self, container: str, caption: str, pending: ContainerMemory) -> dict[str, Any]:
        media_id = self.find_instagram_media(caption, since=self._clock() - RECONCILE_WINDOW_S)
        if media_id is None:  # pending is kept: never create a second post while the first is unaccounted for
            raise MetaResponseError(f"Instagram container {container} was already published, but no post with this "
                                    "caption was found in the last 48 h; check the account before posting again")
        pending.set(None)
        return {"id": media_id, "container_id": container, "permalink": self._permalink(media_id)}

    def _permalink(self, media_id: str) -> str | None:
        try:  # a read after a successful write must not turn the success into a failure
            return self._http.get(media_id, token=self._ig_token(), where="the Instagram permalink",
                                  fields="permalink").get("permalink")
        except MetaError as err:
            _LOGGER.info("no permalink for Instagram media %s: %s", media_id, err)
            return None

    def find_instagram_media(self, caption: str, *, since: datetime | float) -> str | None:
        """The id of the media published since ``since`` with exactly ``caption``, or None (newest first, bounded)."""
        wanted, horizon = _normal(caption), _epoch(since)
        for media in self._paged(f"{self._ig_id()}/media", token=self._ig_token(), where="the Instagram media search",
                                 fields="id,caption,timestamp"):
            if _parse_time(media.get("timestamp")) < horizon:
                return None  # the list is newest first: everything after this is older still
            if _normal(media.get("caption")) == wanted:
                return str(media["id"])
        return None

    def publishing_limit(self) -> dict[str, Any]:
        """Instagram's 24-hour publishing quota: {used, limit, remaining, window_s} (limit None if Graph omits it)."""
        body = self._http.get(f"{self._ig_id()}/content_publishing_limit", token=self._ig_token(),
                              where="the Instagram publishing limit", fields="config,quota_usage")
        row = (body.get("data") or [{}])[0]
        config = row.get("config") or {}
        used, limit = int(row.get("quota_usage") or 0), config.get("quota_total")
        return {"used": used, "limit": limit, "remaining": None if limit is None else max(0, int(limit) - used),
                "window_s": config.get("quota_duration")}

    # -- insights -----------------------------------------------------------------------------------
    def page_insights(self, metrics: Sequence[str] | None = None, *, days: int = 7) -> dict[str, Any]:
        """Page figures over the last ``days`` full days → {"metrics": {name: value}, "skipped": [name]}."""
        page_id, window = self._page_id(), _window(days, MAX_DAYS["page"], self._clock())

        def fetch(names: list[str]) -> dict[str, Any]:
            body = self._with_page_token(lambda token: self._http.get(
                f"{page_id}/insights", token=token, where="the Page insights", metric=",".join(names),
                period="day", **window))
            return _figures(body, names)

        return _tolerant(fetch, list(metrics or DEFAULT_PAGE_METRICS), "Page")

    def instagram_insights(self, metrics: Sequence[str] | None = None, *, days: int = 7) -> dict[str, Any]:
        """Instagram account figures (total_value over the window) → {"metrics": {...}, "skipped": [...]}."""
        ig_id, window = self._ig_id(), _window(days, MAX_DAYS["instagram"], self._clock())

        def fetch(names: list[str]) -> dict[str, Any]:
            body = self._http.get(f"{ig_id}/insights", token=self._ig_token(), where="the Instagram insights",
                                  metric=",".join(names), period="day", metric_type="total_value", **window)
            return _figures(body, names)

        return _tolerant(fetch, list(metrics or DEFAULT_IG_METRICS), "Instagram")

    # -- posts with their metrics (the weekly summary) ----------------------------------------------
    def page_posts(self, *, since: datetime | float, until: datetime | float) -> list[dict[str, Any]]:
        """Every Page post created in [since, until) → [{id, text, created (UTC), url, reach, engagement,
        details: {reactions, comments, shares, views}}], 100 posts a call by field expansion (meta_lists)."""
        page_id, (start, end) = self._page_id(), _span(since, until)
        # Only `since` goes to Graph: Page feeds have applied since/until to updated_time, so `until` could drop
        # a post of the period commented on after it; the period's end is applied to created_time here instead.
        return self._with_page_token(lambda token: meta_lists.page_posts(
            lambda fields, page: self._http.get(f"{page_id}/posts", token=token, where="the Page posts list", **(
                {"fields": fields, "limit": PAGE_SIZE, "since": math.floor(start)} | page)), since=start, until=end))

    def instagram_media(self, *, since: datetime | float, until: datetime | float) -> list[dict[str, Any]]:
        """Every Instagram media published in [since, until) → [{id, text, created (UTC), url, reach, engagement,
        details: {likes, comments, saves, shares, views, reach}}], 100 a call by field expansion (meta_lists)."""
        ig_id, (start, end), token = self._ig_id(), _span(since, until), self._ig_token()
        return meta_lists.instagram_media(
            lambda fields, page: self._http.get(f"{ig_id}/media", token=token, where="the Instagram media list", **(
                {"fields": fields, "limit": PAGE_SIZE, "since": math.floor(start), "until": math.ceil(end)} | page)),
            since=start, until=end)

    # -- lists --------------------------------------------------------------------------------------
    def _paged(self, path: str, *, token: str, where: str, **params: Any) -> Iterator[dict[str, Any]]:
        """The items of a Graph list, page by page as ``next_page`` says (never ``paging.next``: it holds the token)."""
        page: dict[str, str] = {}
        for _ in range(MAX_LIST_PAGES):
            body = self._http.get(path, token=token, where=where, **({"limit": PAGE_SIZE, **params} | page))
            yield from (item for item in body.get("data") or [] if isinstance(item, dict))
            page = next_page(body.get("paging")) or {}
            if not page:
                return


def _tolerant(fetch: Callable[[list[str]], dict[str, Any]], metrics: list[str], node: str) -> dict[str, Any]:
    """All metrics in one call; when Graph refuses one (code 100), drop it and keep the rest.

    Instagram names the refused metric, so it is dropped and the rest asked again (1 + refused calls). A Page
    says only "must be a valid insights metric", so then each metric is asked alone, once (1 + n calls).
    A code-100 refusal that is not about a metric (a bad window...) is raised, not hidden in ``skipped``.
    """
    remaining, skipped = list(dict.fromkeys(metrics)), []
    while remaining:
        try:
            return {"metrics": fetch(remaining), "skipped": skipped}
        except MetaParameterError as err:
            text = err.meta_message or ""
            if "metric" not in text.lower():
                raise
            named = refused_metric(text, remaining)
            if named is None and len(remaining) == 1:
                named = remaining[0]
            if named is None:
                break
            remaining.remove(named)
            skipped.append(skip(named, node, text))
    values: dict[str, Any] = {}
    for name in remaining:  # Graph did not say which: one call per metric, bounded by len(metrics)
        try:
            values.update(fetch([name]))
        except MetaParameterError as err:
            if "metric" not in (err.meta_message or "").lower():
                raise
            skipped.append(skip(name, node, err.meta_message or ""))
    return {"metrics": values, "skipped": skipped}


def _figures(body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """{metric: figure over the window}; Graph returns nothing for a metric without data, which means 0."""
    out: dict[str, Any] = dict.fromkeys(names, 0)
    for item in body.get("data") or []:
        name = item.get("name")
        if name not in out:
            continue
        if isinstance(item.get("total_value"), dict):
            out[name] = item["total_value"].get("value", 0)
            continue
        values = [v.get("value") for v in item.get("values") or [] if isinstance(v, dict)]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if name in LAST_VALUE:
            out[name] = numbers[-1] if numbers else 0
        else:
            out[name] = sum(numbers)
    return out


def _window(days: int, maximum: int, now: float) -> dict[str, int]:
    """since..until as UTC midnights: the last ``days`` full days (today is still being counted)."""
    if not isinstance(days, int) or not 1 <= days <= maximum:
        raise ValidationError(f"days must be between 1 and {maximum}", field="days")
    until = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"since": int((until - timedelta(days=days)).timestamp()), "until": int(until.timestamp())}


def _span(since: datetime | float, until: datetime | float) -> tuple[float, float]:
    start, end = _epoch(since), _epoch(until)
    if not start < end:
        raise ValidationError("since must be before until", field="since")
    return start, end


def _delays() -> Iterator[float]:
    yield from POLL_DELAYS
    while True:
        yield POLL_DELAYS[-1]


def _graph_id(value: str, what: str) -> str:
    """An id that goes into a URL path: digits (or page_post digits) only, so it cannot name another path."""
    if not isinstance(value, str) or not _GRAPH_ID.fullmatch(value):
        raise ValidationError(f"{what} must be a Graph id", field=what.replace(" ", "_"))
    return value


def _post_url(post_id: str) -> str:
    page, _, post = post_id.partition("_")
    return f"https://www.facebook.com/{page}/posts/{post}" if post else f"https://www.facebook.com/{post_id}"


def _normal(text: Any) -> str:
    return "\n".join(line.rstrip() for line in str(text or "").replace("\r\n", "\n").strip().split("\n"))


def _epoch(value: datetime | float) -> float:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return float(value)


def _parse_time(value: Any) -> float:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return float("inf")  # an unreadable time does not end the search early
