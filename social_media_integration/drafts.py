"""A "post about ..." note turned into one draft per platform, each fitted to it: at most 280
characters for X (a link counts 23, as X counts it), the whole text for the Facebook Page, and for
Instagram a caption with the image the note names (no image: no Instagram post). The owner edits
each draft under ``## Message`` before approving; nothing here posts anything."""
from __future__ import annotations

import re
from typing import Any

from core.errors import ValidationError

X_LIMIT, X_LINK = 280, 23
_URL = re.compile(r"https?://\S+")
_IMAGE = re.compile(r"https://\S+?\.(?:jpe?g|png|webp)(?:\?\S*)?", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:please\s+)?(?:post|tweet|share)\s+(?:about|this|that)?\s*:?\s*", re.IGNORECASE)
_FENCE = re.compile(r"^(`{3,})[^\n]*\n(.*?)\n\1", re.MULTILINE | re.DOTALL)


def _note_text(body: str) -> str:
    """The note itself: inside the task's fence when it has one (a dropped file's preview, an email)."""
    fenced = _FENCE.search(body or "")
    return (fenced.group(2) if fenced else body or "").strip()


def x_length(text: str) -> int:
    """Characters as X counts them: every link as 23."""
    return len(_URL.sub("x" * X_LINK, text))


def fit_for_x(text: str) -> str:
    if x_length(text) <= X_LIMIT:
        return text
    links = _URL.findall(text)
    words = _URL.sub("", text).split()
    budget = X_LIMIT - sum(X_LINK + 1 for _ in links) - 1  # room for the links and the ellipsis
    kept: list[str] = []
    for word in words:
        if len(" ".join([*kept, word])) > budget:
            break
        kept.append(word)
    return " ".join([" ".join(kept).rstrip(",;:") + "…", *links]).strip()


def draft_posts(body: str) -> dict[str, Any]:
    note = _note_text(body)
    image = _IMAGE.search(note)
    text = _LEAD.sub("", note, count=1)
    if image:
        text = text.replace(image.group(0), "")
    text = re.sub(r"(?im)^\s*image\s*:\s*$", "", text)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    text = re.sub(r"\s*\bimage\s*:\s*$", "", text, flags=re.IGNORECASE).strip()
    if not text:
        raise ValidationError("the note says nothing to post", field="text")
    links = [u for u in _URL.findall(text)]
    facebook = {"message": text} | ({"link": links[0]} if links else {})
    instagram = [{"caption": text[:2200], "image_url": image.group(0)}] if image else []
    return {"x": fit_for_x(text), "facebook": facebook, "instagram": instagram,
            "note": "no image in the note: no Instagram post" if not image else ""}
