"""The Gmail API calls the suite makes, as plain dicts (google-api-python-client underneath).

Framework-free on purpose: it knows nothing of HTTP servers, the vault or retries. Callers (the
email MCP server, the Gmail watcher) decide what to do with each error class (DESIGN §8).
"""
from __future__ import annotations

import base64
from typing import Any

from mcp_servers.gmail.config import GmailConfig
from mcp_servers.gmail.messages import headers_of, normalize_message
from mcp_servers.gmail.mime import KEY_HEADER, build_mime, check_key, message_id_for
from mcp_servers.gmail.transport import GmailTransport

# Where reconcile looks when Gmail did not keep our Message-ID: an unknown outcome is recent by nature.
_RECONCILE_QUERY = "in:sent newer_than:2d"
_RECONCILE_SCAN = 50


class GmailConnector:
    """Synchronous Gmail client. Thread-safe."""

    def __init__(self, config: GmailConfig) -> None:
        self.config = config
        self._transport = GmailTransport(config)
        self._execute = self._transport.execute

    def is_configured(self) -> bool:
        return self.config.is_configured()

    def get_profile(self) -> dict[str, Any]:
        data = self._execute(lambda s: s.users().getProfile(userId="me"))
        return {"emailAddress": data.get("emailAddress"), "historyId": data.get("historyId")}

    def list_messages(self, query: str | None = None, page_token: str | None = None,
                      max_results: int = 50) -> dict[str, Any]:
        q = self.config.query if query is None else query
        data = self._execute(
            lambda s: s.users().messages().list(userId="me", q=q, pageToken=page_token, maxResults=max_results)
        )
        return {
            # Gmail omits "messages" entirely when nothing matches.
            "messages": [{"id": m["id"], "thread_id": m.get("threadId")} for m in data.get("messages", [])],
            "next_page_token": data.get("nextPageToken"),
        }

    def get_message(self, message_id: str) -> dict[str, Any]:
        data = self._execute(lambda s: s.users().messages().get(userId="me", id=message_id, format="full"))
        return normalize_message(data)

    def history_since(self, start_history_id: str | int) -> dict[str, Any]:
        ids: list[str] = []
        seen: set[str] = set()
        newest = str(start_history_id)
        page_token: str | None = None
        while True:
            data = self._execute(
                lambda s, token=page_token: s.users().history().list(
                    userId="me", startHistoryId=str(start_history_id), historyTypes="messageAdded", pageToken=token
                ),
                history=True,
            )
            for record in data.get("history", []):
                for added in record.get("messagesAdded", []):
                    mid = added.get("message", {}).get("id")
                    if mid and mid not in seen:
                        seen.add(mid)
                        ids.append(mid)
            newest = str(data.get("historyId") or newest)
            page_token = data.get("nextPageToken")
            if not page_token:
                return {"message_ids": ids, "history_id": newest}

    def send(self, to: str, subject: str, body: str, *, idempotency_key: str, cc: str | None = None,
             html: str | None = None, in_reply_to: str | None = None, references: str | None = None,
             thread_id: str | None = None) -> dict[str, Any]:
        """Send once. On GmailConnectionError the outcome is unknown: call find_sent_by_key before retrying."""
        mime = build_mime(to, subject, body, cc=cc, html=html, in_reply_to=in_reply_to, references=references,
                          idempotency_key=idempotency_key)
        payload: dict[str, Any] = {"raw": base64.urlsafe_b64encode(mime.as_bytes()).decode("ascii")}
        if thread_id:
            payload["threadId"] = thread_id
        # A JSON body, not media upload: the upload endpoints are separate paths and proxies often block them.
        data = self._execute(lambda s: s.users().messages().send(userId="me", body=payload))
        return {"id": data.get("id"), "thread_id": data.get("threadId")}

    def find_sent_by_key(self, idempotency_key: str) -> str | None:
        """Reconcile an unknown send outcome: the id of the message sent with this key, or None."""
        check_key(idempotency_key)
        message_id = message_id_for(idempotency_key)
        # Gmail may replace a client's Message-ID; then the key header on recent sent mail is the evidence.
        for query, limit in ((f"rfc822msgid:{message_id}", 5), (_RECONCILE_QUERY, _RECONCILE_SCAN)):
            for summary in self.list_messages(query, max_results=limit)["messages"]:
                data = self._execute(
                    lambda s, mid=summary["id"]: s.users().messages().get(
                        userId="me", id=mid, format="metadata", metadataHeaders=[KEY_HEADER, "Message-ID"]
                    )
                )
                headers = headers_of(data.get("payload") or {})
                if headers.get(KEY_HEADER.lower()) == idempotency_key or headers.get("message-id") == f"<{message_id}>":
                    return summary["id"]
        return None

    def mark_read(self, message_id: str) -> dict[str, Any]:
        data = self._execute(
            lambda s: s.users().messages().modify(userId="me", id=message_id, body={"removeLabelIds": ["UNREAD"]})
        )
        return {"id": data.get("id"), "labels": data.get("labelIds", [])}
