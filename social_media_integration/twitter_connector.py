"""The X API v2 calls the product makes, as plain dicts (tweepy's v2 Client underneath).

Framework-free on purpose: it knows nothing of HTTP servers, the vault, the outbox or retries. Callers (the
twitter MCP server, its skill) decide what each error class means (DESIGN §8): a post is sent at most once per
call, and after an XConnectionError with ``outcome_unknown`` or an XDuplicateError they reconcile with
``find_recent_by_text`` before anything else.
"""
from __future__ import annotations

import html
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import requests

from core.errors import ValidationError
from social_media_integration.twitter_config import XConfig
from social_media_integration.twitter_errors import XConnectionError, XResponseError
from social_media_integration.twitter_transport import XTransport

BATCH = 100  # GET /2/tweets takes at most 100 ids
_RECONCILE_SCAN = 800  # an unknown outcome is recent: a few timeline pages are plenty
_ID = re.compile(r"[0-9]{1,20}")
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
_TIMELINE_FIELDS = ["created_at", "public_metrics", "referenced_tweets", "entities", "note_tweet"]
_PRIVATE_METRICS = ["non_public_metrics", "organic_metrics"]


class XConnector:
    """Synchronous X client for one account. Thread-safe."""

    def __init__(self, config: XConfig, *, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._transport = XTransport(config, session=session, clock=clock)
        self._call = self._transport.call
        self._ua = self._transport.user_auth
        self._me: dict[str, str] | None = None
        self._me_lock = threading.Lock()

    def is_configured(self) -> bool:
        return self.config.is_configured()

    def rate_limits(self) -> dict[str, dict[str, int]]:
        """{endpoint: {limit, remaining, reset}} as X last said, e.g. ``POST /2/tweets``."""
        return self._transport.rate_limits()

    # --- the account ---------------------------------------------------------------------------------

    def me(self) -> dict[str, str]:
        """{id, username} of the authenticated account, asked once per connector."""
        with self._me_lock:
            if self._me is None:
                self._me = self._fetch_me()
            return dict(self._me)

    def probe(self) -> dict[str, str]:
        """One cheap authenticated call (GET /2/users/me, 75 per 15 min): raises what a real call would."""
        me = self._fetch_me()
        with self._me_lock:
            self._me = me
        return dict(me)

    def user_metrics(self, username: str | None = None) -> dict[str, int]:
        """{followers, following, tweets, listed} of the account, or of ``username``."""
        fields = ["public_metrics"]
        if username is None:
            body = self._call(lambda c: c.get_me(user_auth=self._ua, user_fields=fields), where="GET /2/users/me")
        else:
            name = username.strip().lstrip("@")
            if not _USERNAME.fullmatch(name):
                raise ValidationError("username must be 1-15 letters, digits or underscores", field="username")
            body = self._call(lambda c: c.get_user(username=name, user_auth=self._ua, user_fields=fields),
                              where="GET /2/users/by/username/:username")
        data = body.get("data")
        if not data:  # X answers 200 with only errors[] for an unknown user
            errors = body.get("errors") or [{}]
            raise XResponseError(f"X has no such user: {errors[0].get('detail', '@' + str(username))}", status=404)
        m = data.get("public_metrics") or {}
        return {"followers": int(m.get("followers_count", 0)), "following": int(m.get("following_count", 0)),
                "tweets": int(m.get("tweet_count", 0)), "listed": int(m.get("listed_count", 0))}

    # --- posting -------------------------------------------------------------------------------------

    def post(self, text: str, *, reply_to: str | None = None) -> dict[str, str]:
        """Post once: {id, text}. Never retried here. XConnectionError with ``outcome_unknown`` (a timeout, a
        dropped connection, a 5xx) means it may have gone out: reconcile with find_recent_by_text first."""
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("the post text is empty", field="text")
        parent = _check_id(reply_to, "reply_to") if reply_to is not None else None
        body = self._call(lambda c: c.create_tweet(text=text, in_reply_to_tweet_id=parent, user_auth=self._ua),
                          where="POST /2/tweets", write=True)
        data = body.get("data") or {}
        if not data.get("id"):
            raise XConnectionError("X accepted the post but sent no id; reconcile before retrying",
                                   outcome_unknown=True)
        return {"id": str(data["id"]), "text": str(data.get("text", text))}

    def delete(self, tweet_id: str) -> bool:
        """True when X deleted it; False when it was already gone."""
        tid = _check_id(tweet_id, "id")
        body = self._call(lambda c: c.delete_tweet(tid, user_auth=self._ua), where="DELETE /2/tweets/:id",
                          write=True)
        return bool((body.get("data") or {}).get("deleted"))

    # --- metrics and the timeline --------------------------------------------------------------------

    def tweet_metrics(self, ids: Iterable[str]) -> list[dict[str, Any]]:
        """[{id, impressions, likes, replies, reposts, quotes, bookmarks}] in the order asked, 100 ids a call.
        Tweets X no longer has (deleted) are left out."""
        wanted = list(dict.fromkeys(_check_id(i, "ids") for i in ids))
        # Private metrics only exist for own Tweets of the last 30 days; X withholds them per Tweet (a partial
        # error) and keeps the rest, so asking costs nothing. App-only auth never gets them: do not ask.
        fields = ["public_metrics"] + (_PRIVATE_METRICS if self._transport.mode != "app" else [])
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start:start + BATCH]
            body = self._call(lambda c: c.get_tweets(ids=chunk, tweet_fields=fields, user_auth=self._ua),
                              where="GET /2/tweets")
            for tweet in body.get("data") or []:
                found[str(tweet["id"])] = _metrics(tweet)
        return [found[i] for i in wanted if i in found]

    def recent_tweets(self, *, since: datetime | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The account's own Tweets (replies included, reposts not), newest first:
        [{id, text, created_at, reply_to, likes, replies, reposts, quotes, bookmarks, impressions}].
        ``text`` is as the owner wrote it: t.co links expanded, HTML entities decoded."""
        out = []
        for tweet in self._timeline(since, limit):
            replied = [r.get("id") for r in tweet.get("referenced_tweets") or [] if r.get("type") == "replied_to"]
            out.append({"id": str(tweet["id"]), "text": as_written(tweet), "created_at": tweet.get("created_at"),
                        "reply_to": str(replied[0]) if replied else None} | _metrics(tweet))
        return out

    def find_recent_by_text(self, text: str, *, since: datetime | None) -> str | None:
        """The id of the newest own Tweet since ``since`` whose text is ``text`` as X stores it, or None."""
        wanted = normalise_text(text)
        if not wanted:
            return None
        for tweet in self._timeline(since, _RECONCILE_SCAN):
            if same_text(wanted, as_written(tweet)):
                return str(tweet["id"])
        return None

    # --- internals -----------------------------------------------------------------------------------

    def _fetch_me(self) -> dict[str, str]:
        body = self._call(lambda c: c.get_me(user_auth=self._ua), where="GET /2/users/me")
        data = body.get("data") or {}
        if not data.get("id"):
            raise XResponseError("X did not say which account these credentials belong to")
        return {"id": str(data["id"]), "username": str(data.get("username", ""))}

    def _timeline(self, since: datetime | None, limit: int) -> Iterator[dict[str, Any]]:
        user_id = self.me()["id"]
        # The account's own recent Tweets carry their private metrics (impressions) in user context.
        fields = _TIMELINE_FIELDS + (_PRIVATE_METRICS if self._transport.mode != "app" else [])
        params: dict[str, Any] = {"tweet_fields": fields, "exclude": ["retweets"], "user_auth": self._ua}
        if since is not None:
            params["start_time"] = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        seen = 0
        while seen < limit:
            params["max_results"] = min(100, max(5, limit - seen))  # X accepts 5..100
            page = dict(params)
            body = self._call(lambda c: c.get_users_tweets(user_id, **page), where="GET /2/users/:id/tweets")
            for tweet in body.get("data") or []:
                yield tweet
                seen += 1
                if seen >= limit:
                    return
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return
            params["pagination_token"] = token


def _check_id(value: object, field: str) -> str:
    # Ids go into URL paths (DELETE /2/tweets/:id): digits only, so a value cannot point a request elsewhere.
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not _ID.fullmatch(text):
        raise ValidationError(f"{field} must be a numeric Tweet id", field=field)
    return text


def _metrics(tweet: dict[str, Any]) -> dict[str, Any]:
    public = tweet.get("public_metrics") or {}
    private = tweet.get("non_public_metrics") or tweet.get("organic_metrics") or {}
    impressions = private.get("impression_count", public.get("impression_count", 0))
    return {"id": str(tweet["id"]), "impressions": int(impressions or 0),
            "likes": int(public.get("like_count", 0)), "replies": int(public.get("reply_count", 0)),
            "reposts": int(public.get("retweet_count", 0)), "quotes": int(public.get("quote_count", 0)),
            "bookmarks": int(public.get("bookmark_count", 0))}


# --- what X does to text, so a post can be found again ------------------------------------------------
# X stores a post's text changed: every URL (even a bare "acme.com") becomes a t.co link, the original kept in
# entities.urls[].expanded_url (with "http://" added when none was typed); &, < and > come back as &amp; &lt;
# &gt;; leading and trailing whitespace is dropped; text is counted in NFC; a long post's full text is in
# note_tweet. A reply to someone else's Tweet may come back with the "@user " mentions in front.

_URL = re.compile(r"https?://\S+?(?=[.,!?;:)\]'\"]*(?:\s|$))")
_SPACES = re.compile(r"[^\S\n]+")
_LEADING_MENTIONS = re.compile(r"^(?:@\w{1,15}\s+)+")


def as_written(tweet: dict[str, Any]) -> str:
    """The text of an X Tweet as its author typed it, as near as X lets us see."""
    note = tweet.get("note_tweet")
    source = note if isinstance(note, dict) and isinstance(note.get("text"), str) else tweet
    text = str(source.get("text") or "")
    urls = ((source.get("entities") or {}).get("urls")) or []
    for url in sorted(urls, key=lambda u: -len(str(u.get("url", "")))):
        short, long = url.get("url"), url.get("expanded_url")
        if isinstance(short, str) and isinstance(long, str) and short:
            text = text.replace(short, long)
    return html.unescape(text)


def normalise_text(text: str) -> str:
    """Both sides of a comparison go through this: NFC, one kind of line break, runs of spaces as one,
    no space at line ends, URLs without scheme or trailing slash (X's expanded_url may differ in both)."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _URL.sub(lambda m: re.sub(r"^https?://", "", m.group()).rstrip("/"), text)
    text = _SPACES.sub(" ", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def same_text(wanted_normalised: str, stored: str) -> bool:
    candidate = normalise_text(stored)
    if candidate == wanted_normalised:
        return True
    stripped = _LEADING_MENTIONS.sub("", candidate)
    return stripped != candidate and stripped == wanted_normalised
