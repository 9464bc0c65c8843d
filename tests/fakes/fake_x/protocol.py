"""What X API v2 sends on the wire: limits, problem bodies, error texts, Tweet length. Shared by the fake's parts."""
from __future__ import annotations

import re
import urllib.parse
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from aiohttp import web

SIGNATURE_BASES = ("https://api.twitter.com", "https://api.x.com")
PROBLEMS = "https://api.twitter.com/2/problems/"
TWITTER_EPOCH_MS = 1288834974657
WINDOW = 900  # X rate limits are per 15-minute window

ENDPOINTS = {  # key -> default limit per 15 minutes (user context)
    "POST /2/tweets": 200,
    "DELETE /2/tweets/:id": 50,
    "GET /2/tweets": 900,
    "GET /2/users/me": 75,
    "GET /2/users/by/username/:username": 900,
    "GET /2/users/:id/tweets": 900,
    "POST /2/oauth2/token": 0,  # the token endpoint carries no rate-limit headers
    "GET /i/oauth2/authorize": 0,  # X's consent page (on x.com; the fake serves it next to the API)
}
UNAUTHENTICATED = {"POST /2/oauth2/token", "GET /i/oauth2/authorize"}  # client auth, if any, is their own
USER_CONTEXT_ONLY = {"POST /2/tweets", "DELETE /2/tweets/:id", "GET /2/users/me"}
WRITES = {"POST /2/tweets", "DELETE /2/tweets/:id"}

DUPLICATE = "You are not allowed to create a Tweet with duplicate content."
REPLY_GONE = "You attempted to reply to a Tweet that is deleted or not visible to you."
TOO_LONG = ("Your Tweet text is too long. For more information on how Twitter determines text length see "
            "https://github.com/twitter/twitter-text.")
OAUTH1_PERMISSIONS = "Your client app is not configured with the appropriate oauth1 app permissions for this endpoint."
APP_ONLY_FORBIDDEN = ("Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported "
                      "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].")
BAD_REFRESH = "Value passed for the token was invalid."
BAD_CODE = "Value passed for the authorization code was invalid."
BAD_VERIFIER = "Value passed for the code verifier did not match the code challenge."
BAD_REDIRECT = "Value passed for the redirect uri did not match the uri of the authorization code."
NO_CLIENT_AUTH = "Missing valid authorization header"
# What x.com shows instead of redirecting when the authorize request is wrong (an unregistered callback URL, an
# unknown client id, no PKCE challenge): it never sends the browser to a redirect_uri it cannot trust.
AUTHORIZE_REFUSED = ("Something went wrong. You weren’t able to give access to the App. Go back and try "
                     "logging in again.")
METRIC_FIELDS = {
    "public_metrics": ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count",
                       "impression_count"),
    "non_public_metrics": ("impression_count", "url_link_clicks", "user_profile_clicks", "engagements"),
    "organic_metrics": ("impression_count", "like_count", "reply_count", "retweet_count", "url_link_clicks",
                        "user_profile_clicks"),
}
PRIVATE_METRICS = ("non_public_metrics", "organic_metrics")
USER_METRICS = ("followers_count", "following_count", "tweet_count", "listed_count", "like_count", "media_count")


# --- wire helpers ---------------------------------------------------------------------------------


class XError(Exception):
    """Raised inside handlers; the middleware answers it as X would."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status, self.body, self.headers = status, body, dict(headers or {})

    def response(self) -> web.Response:
        ctype = "application/json" if "error" in self.body else "application/problem+json"
        return web.json_response(self.body, status=self.status, headers=self.headers, content_type=ctype)


def problem(status: int, detail: str | None = None, *, title: str | None = None, type_: str = "about:blank",
            **extra: Any) -> dict[str, Any]:
    """X's generic v2 problem body, e.g. {"title":"Unauthorized","type":"about:blank","status":401,...}."""
    reason = HTTPStatus(status).phrase
    return {"title": title or reason, "detail": detail or reason, "type": type_, "status": status, **extra}


def invalid_request(parameter: str, value: str, message: str) -> XError:
    return XError(400, {
        "errors": [{"parameters": {parameter: [value]}, "message": message}],
        "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
        "type": PROBLEMS + "invalid-request",
    })


def not_found(resource: str, parameter: str, value: str) -> dict[str, Any]:
    noun = "tweet with ids" if resource == "tweet" else f"user with {parameter}"
    return {"value": value, "detail": f"Could not find {noun}: [{value}].", "title": "Not Found Error",
            "resource_type": resource, "parameter": parameter, "resource_id": value,
            "type": PROBLEMS + "resource-not-found"}


def field_refused(tweet_id: str, field_name: str) -> dict[str, Any]:
    return {"resource_type": "tweet", "field": field_name, "parameter": "id", "resource_id": tweet_id,
            "title": "Field Authorization Error", "section": "data",
            "detail": f"Sorry, you are not authorized to access '{field_name}' on the Tweet with id : [{tweet_id}].",
            "value": tweet_id, "type": PROBLEMS + "not-authorized-for-field"}


def weighted_length(text: str) -> int:
    """twitter-text v3 weighting: most Latin/punctuation counts 1, CJK and emoji 2, any URL 23."""
    total = 0
    for part in re.split(r"(https?://\S+)", text):
        if re.fullmatch(r"https?://\S+", part):
            total += 23
            continue
        for ch in part:
            cp = ord(ch)
            light = cp <= 4351 or 8192 <= cp <= 8205 or 8208 <= cp <= 8223 or 8242 <= cp <= 8247
            total += 1 if light else 2
    return total


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _parse_time(name: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        raise invalid_request(name, value, f"Invalid '{name}':'{value}'. '{name}' must be a valid ISO 8601 date.") \
            from None


def _pct(value: str) -> str:
    return urllib.parse.quote(value, safe="~")
