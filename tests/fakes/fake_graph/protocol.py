"""What the Graph API sends on the wire: error codes and texts, container statuses, the insights metric sets."""
from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

IG_DOCS = "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights"
UNSUPPORTED = ("Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to missing "
               "permissions, or does not support this operation. Please read the Graph API documentation at "
               "https://developers.facebook.com/docs/graph-api")
ERRORS: dict[str, tuple[int, int, int | None, str]] = {  # name -> (HTTP status, code, subcode, message)
    "invalid_token": (400, 190, None, "Invalid OAuth access token - Cannot parse access token"),
    "session_invalidated": (400, 190, 460, "Error validating access token: The session has been invalidated because "
                                           "the user changed their password or Facebook has changed the session for "
                                           "security reasons."),
    "page_token_required": (400, 190, None, "(#190) This method must be called with a Page Access Token"),
    "app_rate_limit": (400, 4, None, "(#4) Application request limit reached"),
    "user_rate_limit": (400, 17, None, "(#17) User request limit reached"),
    "page_rate_limit": (400, 32, None, "(#32) Page request limit reached"),
    "custom_rate_limit": (400, 613, None, "(#613) Calls to this api have exceeded the rate limit."),
    "policy_block": (400, 368, None, "(#368) The action attempted has been deemed abusive or is otherwise disallowed"),
    "duplicate_post": (400, 506, None, "(#506) Duplicate status message"),
    "invalid_parameter": (400, 100, None, "Invalid parameter"),
    "invalid_metric": (400, 100, None, "(#100) The value must be a valid insights metric"),
    "unknown_error": (500, 1, None, "An unknown error has occurred."),
    "transient": (503, 2, None, "An unexpected error has occurred. Please retry your request later."),
}
RATE_LIMITS = {4: ("app_rate_limit", "app"), 17: ("user_rate_limit", "app"), 32: ("page_rate_limit", "page"),
               613: ("custom_rate_limit", "buc")}
BY_STATUS = {500: "unknown_error", 502: "transient", 503: "transient", 504: "transient", 400: "invalid_parameter"}
STATUS_TEXT = {
    "IN_PROGRESS": "In Progress: Media is still being processed.",
    "FINISHED": "Finished: Media has been uploaded and it is ready to be published.",
    "PUBLISHED": "Published: Media has been published.",
    "EXPIRED": "Expired: The container was not published within 24 hours and has expired.",
    "ERROR": "Error: Media upload has failed with error code {code}",
}
PAGE_METRICS = {"page_media_view", "page_total_media_view_unique", "page_follows", "page_daily_follows_unique",
                "page_daily_unfollows_unique", "page_post_engagements", "page_views_total", "page_video_views"}
RETIRED_PAGE_METRICS = {"page_impressions", "page_impressions_unique", "page_impressions_paid", "page_fans",
                        "page_fan_adds", "page_fan_adds_unique", "page_engaged_users", "page_consumptions"}
IG_METRICS = ["reach", "follower_count", "website_clicks", "profile_views", "online_followers", "accounts_engaged",
              "total_interactions", "likes", "comments", "shares", "saves", "replies", "engaged_audience_demographics",
              "reached_audience_demographics", "follower_demographics", "follows_and_unfollows", "profile_links_taps",
              "views"]
IG_TOTAL_VALUE_ONLY = {"website_clicks", "profile_views", "accounts_engaged", "total_interactions", "likes",
                       "comments", "shares", "saves", "replies", "follows_and_unfollows", "profile_links_taps", "views"}
# Page post metrics (GET /{post-id}/insights, or insights.metric(...) expanded on /{page-id}/posts): the views
# family replaced post_impressions* (post_media_view, post_total_media_view_unique; Pages API deprecations).
POST_METRICS = {"post_media_view", "post_total_media_view_unique", "post_clicks", "post_reactions_by_type_total",
                "post_reactions_like_total", "post_activity_by_action_type"}
RETIRED_POST_METRICS = {"post_impressions", "post_impressions_unique", "post_impressions_paid",
                        "post_impressions_paid_unique", "post_impressions_organic", "post_impressions_organic_unique",
                        "post_impressions_fan_unique", "post_impressions_viral_unique", "post_engaged_users",
                        "post_negative_feedback", "post_clicks_unique"}
# Instagram media metrics (per media: "saved", where the account says "saves"). A refused one, retired (plays,
# impressions, video_views...) or unknown, is answered "metric[i] must be one of the following values: ...".
IG_MEDIA_METRICS = ["views", "reach", "saved", "shares", "likes", "comments", "total_interactions", "follows",
                    "profile_visits", "profile_activity", "replies", "navigation", "ig_reels_avg_watch_time",
                    "ig_reels_video_view_total_time"]
POST_FIELDS = {"id", "message", "created_time", "updated_time", "permalink_url", "link", "shares", "reactions",
               "comments", "insights", "full_picture", "status_type", "story", "from", "is_published", "attachments",
               "message_tags", "is_hidden", "privacy"}  # valid on a Page post; the fake returns the ones it models
MEDIA_FIELDS = {"id", "caption", "media_type", "media_product_type", "permalink", "shortcode", "timestamp",
                "like_count", "comments_count", "insights", "media_url", "thumbnail_url", "username", "owner",
                "is_comment_enabled", "children", "comments", "is_shared_to_feed"}
POST_METRIC_KEYS = ("reactions", "comments", "shares", "views", "reach")  # what a test sets on a Page post
MEDIA_METRIC_KEYS = ("likes", "comments", "saves", "shares", "views", "reach")  # ... and on Instagram media
RETIRED_IG_METRICS = {"impressions": f"(#100) Starting from version v22.0 and above, the impressions metric is no "
                                     f"longer supported for the queried user. Please refer to the documentation at "
                                     f"{IG_DOCS} for a list of supported metrics."}


class GraphError(Exception):
    def __init__(self, status: int, code: int, message: str, subcode: int | None = None, *,
                 type_: str = "OAuthException", headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.subcode, self.type = status, code, message, subcode, type_
        self.headers, self.extra = dict(headers or {}), extra
        self.regain_minutes: int | None = None  # estimated_time_to_regain_access for a rate-limit answer

    @classmethod
    def named(cls, name: str, **kwargs: Any) -> GraphError:
        status, code, subcode, message = ERRORS[name]
        if code == 2:
            kwargs.setdefault("is_transient", True)
        if code == 190:
            kwargs.setdefault("headers", {"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{message}"'})
        return cls(status, code, kwargs.pop("message", message), kwargs.pop("subcode", subcode), **kwargs)

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err.update(self.extra)
        err["fbtrace_id"] = "A" + secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")
        return {"error": err}


def _graph_time(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _pst(ts: float) -> str:
    return (datetime.fromtimestamp(ts, timezone.utc) - timedelta(hours=8)).strftime("%A, %d-%b-%y %H:%M:%S PST")


def _cursor(n: int) -> str:
    return base64.b64encode(str(n).encode()).decode().rstrip("=")


def _uncursor(value: str) -> int:
    try:
        return int(base64.b64decode(value + "=" * (-len(value) % 4)).decode())
    except ValueError:
        raise GraphError.named("invalid_parameter", message="(#100) Invalid cursor") from None
