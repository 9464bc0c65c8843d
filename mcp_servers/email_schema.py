"""The email server's tool inputs and outputs, in a module light enough for gmail_skill to import:
the skill's parameter schema *is* ``SendEmailInput``'s, so the two cannot drift apart.

Empty strings: every optional text field accepts ``""`` and treats it as absent. Handbook templates
such as ``"{message_id_header}"`` produce ``""`` for a message without that header, and the approval
gate compares parameters exactly as approved, so nothing is dropped or rewritten on the way.
"""
from __future__ import annotations

from pydantic import Field, field_validator

from core.contacts import read_addresses

from mcp_servers.tools import ToolInput

# Gmail ids are short hex strings; the pattern is defence in depth for a value that ends up in a URL.
GMAIL_ID = r"^[A-Za-z0-9_-]{1,128}$"


class SendEmailInput(ToolInput):
    to: str = Field(min_length=1, max_length=2000, description="Recipient(s), comma-separated RFC 5322 addresses.")
    subject: str = Field(max_length=998, description="Subject line.")
    body: str = Field(max_length=200_000, description="Plain-text body: the text the owner approved.")
    cc: str | None = Field(None, max_length=2000, description="Cc recipient(s); empty means none.")
    html: str | None = Field(None, max_length=500_000, description="Optional HTML alternative of the body.")
    in_reply_to: str | None = Field(None, max_length=998, description="Message-ID this answers (threading).")
    references: str | None = Field(None, max_length=4000, description="References header (threading).")
    thread_id: str | None = Field(None, max_length=128, description="Gmail thread to add the message to.")

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: str | None, info) -> str | None:  # noqa: ANN001 - pydantic's ValidationInfo
        """Every recipient must read as an address: what is approved is exactly who receives it."""
        if not value:
            return value
        found, whole = read_addresses(value)
        if not whole or (info.field_name == "to" and not found):
            raise ValueError(f"cannot read {value!r} as addresses separated by commas")
        return value


class ReceiveEmailInput(ToolInput):
    query: str | None = Field(None, max_length=1000, description="Gmail search query; default GMAIL_QUERY.")
    page_token: str | None = Field(None, max_length=500, description="next_page_token of the previous page.")
    max_results: int = Field(10, ge=1, le=100, description="Messages per page.")


class ProcessEmailInput(ToolInput):
    message_id: str = Field(pattern=GMAIL_ID, description="Gmail message id to turn into a vault task.")


class GmailWatchInput(ToolInput):
    pass


def blank_to_none(value: str | None) -> str | None:
    return value or None


_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
SENT_SCHEMA = {
    "type": "object",
    "properties": {"id": _TEXT, "thread_id": _MAYBE_TEXT, "reconciled": {"type": "boolean"}},
    "required": ["id"],
}
MESSAGE_SCHEMA = {
    "type": "object",
    "properties": {key: _MAYBE_TEXT for key in (
        "id", "thread_id", "from", "reply_to", "to", "cc", "subject", "date", "snippet", "message_id_header", "references",
        "body_text", "body_html")} | {"labels": {"type": "array", "items": _TEXT}},
    "required": ["id", "thread_id", "from", "subject", "labels"],
}
RECEIVED_SCHEMA = {
    "type": "object",
    "properties": {"messages": {"type": "array", "items": MESSAGE_SCHEMA}, "next_page_token": _MAYBE_TEXT},
    "required": ["messages", "next_page_token"],
}
PROCESSED_SCHEMA = {
    "type": "object",
    "properties": {"message_id": _TEXT, "task_id": _MAYBE_TEXT, "created": {"type": "boolean"},
                   "skipped": _MAYBE_TEXT},
    "required": ["message_id", "task_id", "created", "skipped"],
}
WATCH_SCHEMA = {
    "type": "object",
    "properties": {
        "query": _TEXT,
        "cursor": {"type": ["object", "null"]},
        "watcher": {"type": ["object", "null"]},
        "backlog": {"type": "integer"},
        "tasks_created": {"type": "integer"},
    },
    "required": ["query", "cursor", "watcher", "backlog", "tasks_created"],
}
