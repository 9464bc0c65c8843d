"""The social servers' tool inputs and outputs (DESIGN §11): X (8083), Facebook and Instagram (8084)."""
from __future__ import annotations

from pydantic import Field, model_validator

from mcp_servers.tools import ToolInput

URL = r"^https://\S+$"  # what a platform fetches (an image, a link) must be a public https address


class PostTweetInput(ToolInput):
    text: str = Field(min_length=1, max_length=280, description="The tweet, 280 characters at most.")
    reply_to: str | None = Field(None, pattern=r"^\d{1,20}$", description="Id of the tweet this replies to.")


class PostThreadInput(ToolInput):
    tweets: list[str] = Field(min_length=2, max_length=25, description="The tweets in order; each replies to "
                                                                        "the one before.")

    @model_validator(mode="after")
    def _each_fits(self) -> "PostThreadInput":
        for n, text in enumerate(self.tweets, start=1):
            if not text.strip() or len(text) > 280:
                raise ValueError(f"tweet {n} must have 1 to 280 characters")
        return self


class UserMetricsInput(ToolInput):
    username: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{1,15}$", description="Default: the account itself.")


class TweetMetricsInput(ToolInput):
    ids: list[str] = Field(min_length=1, max_length=1000, description="Tweet ids (fetched 100 per call).")


class SummaryInput(ToolInput):
    days: int = Field(7, ge=1, le=31, description="The period: this many days, against as many before them.")


class PostFacebookInput(ToolInput):
    message: str = Field(min_length=1, max_length=63_206, description="The post's text.")
    link: str | None = Field(None, pattern=URL, max_length=2000, description="A link to share with it.")
    image_url: str | None = Field(None, pattern=URL, max_length=2000, description="A photo to post (https).")


class PostInstagramInput(ToolInput):
    caption: str = Field(min_length=1, max_length=2200, description="The caption.")
    image_url: str | None = Field(None, pattern=URL, max_length=2000, description="The image (a public https JPEG).")
    video_url: str | None = Field(None, pattern=URL, max_length=2000, description="Or a video (posted as a Reel).")

    @model_validator(mode="after")
    def _one_medium(self) -> "PostInstagramInput":
        if bool(self.image_url) == bool(self.video_url):
            raise ValueError("an Instagram post needs exactly one of image_url and video_url")
        return self


class InsightsInput(ToolInput):
    days: int = Field(7, ge=1, le=30, description="The last this many full days.")


_ID = {"type": "string"}
POSTED_SCHEMA = {"type": "object", "properties": {"id": _ID, "url": {"type": ["string", "null"]}}, "required": ["id"]}
THREAD_SCHEMA = {"type": "object", "properties": {"ids": {"type": "array", "items": _ID}, "url": {"type": "string"}},
                 "required": ["ids", "url"]}
USER_METRICS_SCHEMA = {"type": "object", "properties": {k: {"type": "integer"} for k in
                                                        ("followers", "following", "tweets", "listed")},
                       "required": ["followers", "following", "tweets", "listed"]}
TWEET_METRICS_SCHEMA = {"type": "object", "properties": {"tweets": {"type": "array", "items": {"type": "object"}}},
                        "required": ["tweets"]}
SUMMARY_SCHEMA = {"type": "object", "properties": {"posts": {"type": "integer"}, "reach": {"type": "integer"},
                                                   "engagement": {"type": "integer"}, "path": {"type": "string"}},
                  "required": ["posts", "reach", "engagement", "path"]}
IG_POSTED_SCHEMA = {"type": "object", "properties": {"id": _ID, "permalink": {"type": ["string", "null"]}},
                    "required": ["id"]}
INSIGHTS_SCHEMA = {"type": "object", "properties": {"metrics": {"type": "object"},
                                                    "skipped": {"type": "array"}}, "required": ["metrics", "skipped"]}
META_SUMMARY_SCHEMA = {"type": "object", "properties": {"facebook": {"type": ["object", "null"]},
                                                        "instagram": {"type": ["object", "null"]},
                                                        "paths": {"type": "array", "items": {"type": "string"}}},
                       "required": ["paths"]}
