"""FakeGraph: Pages, Instagram accounts, containers and media, tokens, usage, and the test controls."""
from __future__ import annotations

import base64
import bisect
import itertools
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from aiohttp import web

from tests.fakes.fake_graph.protocol import (BY_STATUS, IG_MEDIA_METRICS, IG_METRICS, IG_TOTAL_VALUE_ONLY,
                                             MEDIA_METRIC_KEYS, PAGE_METRICS, POST_METRIC_KEYS, POST_METRICS,
                                             RATE_LIMITS, RETIRED_IG_METRICS, RETIRED_PAGE_METRICS,
                                             RETIRED_POST_METRICS, GraphError)
from tests.fakes.threaded import Hold, ThreadedServer


@dataclass
class Token:
    kind: str  # "user" | "page"
    page_id: str | None
    expires_at: float | None
    invalidated: bool = False


@dataclass
class Post:
    id: str
    message: str
    link: str | None
    created: datetime
    photo_id: str | None = None
    metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(POST_METRIC_KEYS, 0))


@dataclass
class Page:
    id: str
    name: str
    category: str
    access_token: str
    ig_id: str | None
    posts: list[Post] = field(default_factory=list)


@dataclass
class Container:
    id: str
    ig_id: str
    media_type: str
    url: str
    caption: str
    polls_left: int
    outcome: str
    error_code: int
    status: str = "IN_PROGRESS"
    media_id: str | None = None


@dataclass
class Media:
    id: str
    ig_id: str
    caption: str
    media_type: str
    product: str
    created: datetime
    shortcode: str
    metrics: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MEDIA_METRIC_KEYS, 0))


@dataclass
class _Fault:
    key: str
    countdown: int
    times: int
    error: GraphError | None  # None: close the connection without answering
    after_accept: bool


class FakeGraph(ThreadedServer):
    name = "fake-graph"

    def __init__(self, *, version: str = "v26.0", polls_in_progress: int = 1) -> None:
        self.version = version
        self.polls_in_progress = polls_in_progress  # status polls answered IN_PROGRESS before the outcome
        self.app_id, self.app_secret = "1234567890123456", secrets.token_hex(16)
        self.require_appsecret_proof = False
        self.quota_total, self.quota_duration = 50, 86400
        self.duplicate_window = 86400.0
        self.blocked_terms: set[str] = set()
        self.page_metrics, self.retired_page_metrics = set(PAGE_METRICS), set(RETIRED_PAGE_METRICS)
        self.ig_metrics, self.ig_total_value_only = list(IG_METRICS), set(IG_TOTAL_VALUE_ONLY)
        self.retired_ig_metrics = dict(RETIRED_IG_METRICS)
        self.post_metrics, self.retired_post_metrics = set(POST_METRICS), set(RETIRED_POST_METRICS)
        self.ig_media_metrics = list(IG_MEDIA_METRICS)
        self.feed_paging = "cursor"  # or "time": /feed and /posts page by until + __paging_token, no cursors
        self.refused_metrics: list[tuple[str, str, str]] = []  # (node, metric, "retired" | "unknown"), as logged
        self.calls: Counter[str] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.usage = {kind: {"call_count": 0, "total_time": 0, "total_cputime": 0, "estimated_time_to_regain_access": 0}
                      for kind in ("app", "page", "buc")}
        self._throttle: int | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(17841400000000100)
        self._tokens: dict[str, Token] = {}
        self.pages: dict[str, Page] = {}
        self._containers: dict[str, Container] = {}
        self._media: dict[str, Media] = {}
        self._media_order: dict[str, list[Media]] = {}  # ig user id -> its media newest first (made when asked)
        self._ig_pages: dict[str, str] = {}  # ig user id -> page id
        self._publishes: dict[str, list[float]] = {}
        self._outcomes: list[tuple[str, int | None, int]] = []
        self._insights: dict[tuple[str, str], dict[date, int] | int] = {}
        self._faults: list[_Fault] = []
        self.user_token = self.issue_user_token()
        self.page_id, self.ig_user_id = self.add_page("Acme Studio")
        super().__init__()

    def build_app(self) -> web.Application:
        from tests.fakes.fake_graph.wire import create_app  # the wire module imports this one

        return create_app(self)

    @property
    def base_url(self) -> str:
        return f"{self.url}/{self.version}"

    # --- test controls ---------------------------------------------------------------------------

    def issue_user_token(self, lifetime: float | None = 5_184_000) -> str:
        with self._lock:
            token = "EAAG" + secrets.token_urlsafe(48)
            self._tokens[token] = Token("user", None, None if lifetime is None else time.time() + lifetime)
            return token

    def add_page(self, name: str, *, category: str = "Product/service", instagram: bool = True) -> tuple[str, str]:
        """A Page the user manages (with a linked Instagram professional account); returns (page id, ig id)."""
        with self._lock:
            pid, ig = str(next(self._ids)), str(next(self._ids)) if instagram else None
            token = "EAAG" + secrets.token_urlsafe(48)
            self._tokens[token] = Token("page", pid, None)  # Page tokens from a long-lived user token never expire
            self.pages[pid] = Page(pid, name, category, token, ig)
            if ig:
                self._ig_pages[ig], self._publishes[ig] = pid, []
            return pid, ig or ""

    def page_token(self, page_id: str | None = None) -> str:
        return self.pages[page_id or self.page_id].access_token

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._tokens[token].expires_at = time.time() - 60

    def invalidate_token(self, token: str) -> None:
        with self._lock:
            self._tokens[token].invalidated = True

    def seed_post(self, message: str, *, page_id: str | None = None, link: str | None = None,
                  created: datetime | None = None, metrics: dict[str, int] | None = None) -> str:
        """A Page post as if published at ``created``; ``metrics`` as for set_post_metrics."""
        with self._lock:
            post = self._post(self.pages[page_id or self.page_id], message, link, created)
            post.metrics.update(_counts(metrics or {}, POST_METRIC_KEYS))
            return post.id

    def set_post_metrics(self, post_id: str, **counts: int) -> None:
        """What Graph counts on a Page post: reactions, comments, shares (reactions.summary, comments.summary,
        shares.count), views and reach (the post_media_view and post_total_media_view_unique insights)."""
        with self._lock:
            post = next(p for page in self.pages.values() for p in page.posts if p.id == post_id)
            post.metrics.update(_counts(counts, POST_METRIC_KEYS))

    def posts(self, page_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [p.__dict__ | {"metrics": dict(p.metrics)} for p in self.pages[page_id or self.page_id].posts]

    def seed_media(self, caption: str, *, ig_id: str | None = None, created: datetime | None = None,
                   metrics: dict[str, int] | None = None) -> str:
        """Published Instagram media as of ``created``; ``metrics`` as for set_media_metrics."""
        with self._lock:
            media = self._publish_media(ig_id or self.ig_user_id, caption, "IMAGE", created)
            media.metrics.update(_counts(metrics or {}, MEDIA_METRIC_KEYS))
            return media.id

    def set_media_metrics(self, media_id: str, **counts: int) -> None:
        """What Graph counts on Instagram media: likes and comments (like_count, comments_count), saves, shares,
        views and reach (the saved, shares, views and reach insights)."""
        with self._lock:
            self._media[media_id].metrics.update(_counts(counts, MEDIA_METRIC_KEYS))

    def media(self, ig_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m.__dict__ | {"metrics": dict(m.metrics)} for m in self._media.values()
                    if m.ig_id == (ig_id or self.ig_user_id)]

    def container(self, container_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._containers[container_id].__dict__)

    def next_container(self, outcome: str = "FINISHED", *, polls: int | None = None, error_code: int = 2207026) -> None:
        """The next container created ends as ``outcome`` (FINISHED, ERROR, EXPIRED) after ``polls`` polls."""
        assert outcome in ("FINISHED", "ERROR", "EXPIRED"), outcome
        with self._lock:
            self._outcomes.append((outcome, polls, error_code))

    def set_quota_usage(self, used: int, ig_id: str | None = None) -> None:
        with self._lock:
            self._publishes[ig_id or self.ig_user_id] = [time.time()] * used

    def set_insight(self, node_id: str, metric: str, values: dict[date, int] | int) -> None:
        """Daily values of a metric (a constant, or per day: the day the value is *for*)."""
        with self._lock:
            self._insights[(node_id, metric)] = values

    def set_usage(self, kind: str, **fields: int) -> None:
        with self._lock:
            self.usage[kind].update(fields)

    def throttle(self, code: int, *, minutes: int = 10) -> None:
        """Every call fails with rate-limit ``code`` (4, 17, 32, 613) and the usage headers say 100%."""
        kind = RATE_LIMITS[code][1]
        with self._lock:
            self._throttle = code
            self.usage[kind].update(call_count=100, total_time=100, total_cputime=100,
                                    estimated_time_to_regain_access=minutes)

    def clear_throttle(self) -> None:
        with self._lock:
            self._throttle = None
            for usage in self.usage.values():
                usage.update(call_count=0, total_time=0, total_cputime=0, estimated_time_to_regain_access=0)

    def count(self, key: str) -> int:
        return self.calls[key]

    def fail(self, key: str, error: str | int | None, *, nth: int = 1, times: int = 1, after_accept: bool = False,
             minutes: int | None = None, **overrides: Any) -> None:
        """Fail the ``nth`` next authenticated call to ``key`` with a named error (see ``ERRORS``), an HTTP
        status, or None (connection closed, no answer). ``after_accept=True`` lets the call take effect first.
        A rate-limit error's usage header reads 100% with ``minutes`` as estimated_time_to_regain_access."""
        err = None
        if error is not None:
            name = error if isinstance(error, str) else BY_STATUS.get(error, "unknown_error")
            err = GraphError.named(name, **overrides)
            if isinstance(error, int):
                err.status = error
            err.regain_minutes = minutes
        with self._lock:
            self._faults.append(_Fault(key, nth, times, err, after_accept))

    def hold(self, key: str, *, after_accept: bool = False) -> Hold:
        """Hold the next authenticated call to ``key`` before it takes effect (``abandoned`` if its client
        went away meanwhile) or, ``after_accept=True``, after; ``body`` is the held call's parameters."""
        return self._add_hold(Hold(key, after=after_accept))

    # --- internals (callers hold the lock) -------------------------------------------------------

    def _post(self, page: Page, message: str, link: str | None, created: datetime | None,
              photo_id: str | None = None) -> Post:
        post = Post(f"{page.id}_{next(self._ids)}", message, link, created or datetime.now(timezone.utc), photo_id)
        # The feed is newest first; a post lands before those of the same second (bisect: seeding stays linear).
        index = bisect.bisect_left(page.posts, -post.created.timestamp(), key=lambda p: -p.created.timestamp())
        page.posts.insert(index, post)
        return post

    def _publish_media(self, ig_id: str, caption: str, media_type: str, created: datetime | None = None) -> Media:
        mid = str(next(self._ids))
        product = {"REELS": "REELS", "STORIES": "STORY"}.get(media_type, "FEED")
        kind = "VIDEO" if media_type in ("REELS", "VIDEO") else "IMAGE"
        media = Media(mid, ig_id, caption, kind, product, created or datetime.now(timezone.utc),
                      base64.urlsafe_b64encode(secrets.token_bytes(8)).decode().rstrip("="))
        self._media[mid] = media
        self._media_order.pop(ig_id, None)
        self._publishes[ig_id].append(time.time())
        return media

    def _media_newest_first(self, ig_id: str) -> list[Media]:
        if ig_id not in self._media_order:
            self._media_order[ig_id] = sorted((m for m in self._media.values() if m.ig_id == ig_id),
                                              key=lambda m: (m.created, int(m.id)), reverse=True)
        return self._media_order[ig_id]

    def _quota_used(self, ig_id: str) -> int:
        horizon = time.time() - self.quota_duration
        return sum(1 for t in self._publishes[ig_id] if t > horizon)

    def _take_fault(self, key: str) -> _Fault | None:
        with self._lock:
            fired = None
            for fault in self._faults:
                if fault.key == key and fault.times > 0:
                    fault.countdown -= 1
                    if fault.countdown <= 0 and fired is None:
                        fault.times, fired = fault.times - 1, fault
            self._faults = [f for f in self._faults if f.times > 0]
            return fired

    def _usage_headers(self, token: Token | None, node: str | None, error: GraphError | None) -> dict[str, str]:
        rate_kind = RATE_LIMITS[error.code][1] if error is not None and error.code in RATE_LIMITS else None
        with self._lock:
            if self._throttle is None:
                for usage in self.usage.values():  # usage creeps up, one percent a call
                    usage["call_count"] = min(100, usage["call_count"] + 1)
            usage = {kind: dict(values) for kind, values in self.usage.items()}
            if rate_kind is not None:
                usage[rate_kind].update(call_count=100, total_time=100, total_cputime=100)
                if error.regain_minutes is not None:
                    usage[rate_kind]["estimated_time_to_regain_access"] = error.regain_minutes
            app = usage["app"]
            headers = {"X-App-Usage": json.dumps({k: app[k] for k in ("call_count", "total_time", "total_cputime")}),
                       "facebook-api-version": self.version}
            ig = node in self._ig_pages or node in self._containers or node in self._media
            page_token = token is not None and token.kind == "page"
            if page_token or ig or rate_kind == "buc":
                owner = node if ig or not page_token else token.page_id
                headers["X-Business-Use-Case-Usage"] = json.dumps(
                    {owner: [{"type": "instagram" if ig else "pages", **usage["buc"]}]})
            if page_token or rate_kind == "page":
                headers["X-Page-Usage"] = json.dumps(usage["page"])
            return headers


def _counts(counts: dict[str, int], keys: tuple[str, ...]) -> dict[str, int]:
    unknown = set(counts) - set(keys)
    if unknown:
        raise TypeError(f"unknown metric(s) {sorted(unknown)}; the fake counts {', '.join(keys)}")
    return {k: int(v) for k, v in counts.items() if v is not None}
