"""Gmail's format=full messages flattened into plain dicts."""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any


def headers_of(payload: Mapping[str, Any]) -> dict[str, str]:
    # First occurrence wins, as mail clients do for duplicated headers.
    out: dict[str, str] = {}
    for h in payload.get("headers", []) or []:
        out.setdefault(str(h.get("name", "")).lower(), str(h.get("value", "")))
    return out


def _decode_body(part: Mapping[str, Any]) -> str | None:
    data = (part.get("body") or {}).get("data")
    if not data:
        return None
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None
    charset = "utf-8"
    match = re.search(r'charset="?([^";\s]+)', headers_of(part).get("content-type", ""), re.I)
    if match:
        charset = match.group(1)
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def _walk(part: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield part
    for child in part.get("parts", []) or []:
        yield from _walk(child)


def normalize_message(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten a format=full Gmail message; tolerant of missing payloads and parts."""
    payload = data.get("payload") or {}
    headers = headers_of(payload)
    text: str | None = None
    html: str | None = None
    for part in _walk(payload):
        if part.get("filename") or "attachment" in headers_of(part).get("content-disposition", "").lower():
            continue
        mime_type = str(part.get("mimeType", "")).lower()
        if mime_type == "text/plain" and text is None:
            text = _decode_body(part)
        elif mime_type == "text/html" and html is None:
            html = _decode_body(part)
    return {
        "id": data.get("id"),
        "thread_id": data.get("threadId"),
        "from": headers.get("from", ""),
        "reply_to": headers.get("reply-to", ""),
        "to": headers.get("to", ""),
        "cc": headers.get("cc", ""),
        "subject": headers.get("subject", ""),
        "date": headers.get("date", ""),
        "snippet": data.get("snippet", ""),
        "labels": list(data.get("labelIds", [])),
        "message_id_header": headers.get("message-id", ""),
        "references": headers.get("references", ""),
        "body_text": text or "",
        "body_html": html or "",
    }
