"""social_skill: a "post about ..." note turned into one draft per platform, fitted to each.

Read-only: it only drafts. The posting steps that follow (twitter_skill, facebook_instagram_skill)
each become an approval request whose ``## Message`` the owner may edit before approving.
"""
from __future__ import annotations

from core.engine.skills import ActionContext, Skill
from social_media_integration.drafts import draft_posts as draft, draft_thread as thread

skill = Skill("social_skill")


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["text"],
                      "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 100_000}}},
              read_only=True, channel="social",
              description="Draft a post for X (280 characters), the Facebook Page and Instagram (with the image).")
def draft_posts(params: dict, ctx: ActionContext) -> dict:
    return draft(params["text"])


@skill.action(schema={"type": "object", "additionalProperties": False, "required": ["text"],
                      "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 100_000}}},
              read_only=True, channel="social",
              description="Draft a thread for X: one tweet per paragraph (or per part between --- lines).")
def draft_thread(params: dict, ctx: ActionContext) -> dict:
    return thread(params["text"])
