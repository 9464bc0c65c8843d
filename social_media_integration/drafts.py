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
_LEAD = re.compile(r"^\s*(?:please\s+)?(?:post|tweet|share)\s+(?:on\s+linkedin\s*)?(?:about|this|that)?\s*:?\s*",
                   re.IGNORECASE)
_THREAD_LEAD = re.compile(r"^\s*(?:please\s+)?(?:post|tweet|write)\s+(?:a\s+)?thread(?:\s+about)?\b[^\n]*\n", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
MAX_THREAD = 25
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
    lines = note.splitlines()
    if len(lines) > 1 and _LEAD.match(lines[0]) and any(line.strip() for line in lines[1:]):
        text = "\n".join(lines[1:])  # "Please post this:" on a line of its own, the post below it
    else:
        text = _LEAD.sub("", note, count=1)
    if image:
        text = text.replace(image.group(0), "")
    text = re.sub(r"(?im)^\s*image\s*:\s*$", "", text)
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    text = re.sub(r"\s*\bimage\s*:\s*$", "", text, flags=re.IGNORECASE).strip()
    if not text:
        raise ValidationError("the note says nothing to post", field="text")
    text = text[0].upper() + text[1:]
    links = [u for u in _URL.findall(text)]
    facebook = {"message": text} | ({"link": links[0]} if links else {})
    instagram = [{"caption": text[:2200], "image_url": image.group(0)}] if image else []
    return {"x": fit_for_x(text), "facebook": facebook, "instagram": instagram,
            "note": "no image in the note: no Instagram post" if not image else ""}


def draft_thread(body: str) -> dict[str, Any]:
    """A "post a thread about ..." note: after its first line, each paragraph (or each part between
    lines of ``---``) is one tweet, a long one split at sentence ends to fit X's 280."""
    note = _THREAD_LEAD.sub("", _note_text(body) + "\n", count=1).strip()
    rule = re.compile(r"^\s*---+\s*$", re.MULTILINE)
    parts = rule.split(note) if rule.search(note) else re.split(r"\n\s*\n", note)
    tweets: list[str] = []
    for part in (" ".join(line.strip() for line in p.splitlines() if line.strip()) for p in parts):
        tweets += _split_for_x(part) if part else []
    if len(tweets) < 2:
        raise ValidationError("a thread needs at least two parts: separate them with a blank line or ---",
                              field="text")
    if len(tweets) > MAX_THREAD:
        raise ValidationError(f"a thread of {len(tweets)} tweets is too long: at most {MAX_THREAD}", field="text")
    return {"tweets": tweets, "count": len(tweets)}


def _split_for_x(text: str) -> list[str]:
    """Sentences gathered into tweets of at most 280 (as X counts); a sentence too long alone is fitted."""
    out, current = [], ""
    for sentence in _SENTENCE.split(text):
        joined = f"{current} {sentence}".strip()
        if x_length(joined) <= X_LIMIT:
            current = joined
            continue
        if current:
            out.append(current)
        current = sentence if x_length(sentence) <= X_LIMIT else fit_for_x(sentence)
    return [*out, current] if current else out
