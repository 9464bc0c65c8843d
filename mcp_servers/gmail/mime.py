"""The MIME message the connector sends, stamped with the idempotency key so it can be found again."""
from __future__ import annotations

import email.policy
import email.utils
import re
from email.message import EmailMessage

from core.errors import ValidationError

KEY_HEADER = "X-AI-Employee-Key"
MESSAGE_ID_DOMAIN = "ai-employee.local"
# The key becomes part of a Message-ID and a search query: keep it to characters that are safe in both.
_KEY_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ValidationError("idempotency_key must be 1-128 of A-Z a-z 0-9 . _ -", field="idempotency_key")


def message_id_for(idempotency_key: str) -> str:
    """Deterministic Message-ID (without brackets) so a send can be found again by rfc822msgid:."""
    return f"{idempotency_key}@{MESSAGE_ID_DOMAIN}"


def build_mime(to: str, subject: str, body: str, *, idempotency_key: str, cc: str | None = None,
               html: str | None = None, in_reply_to: str | None = None, references: str | None = None) -> EmailMessage:
    check_key(idempotency_key)
    if not to or not to.strip():
        raise ValidationError("a recipient is required", field="to")
    msg = EmailMessage(policy=email.policy.SMTP)
    try:
        # The email package refuses CR/LF in header values, which is our header-injection guard.
        msg["To"] = to
        if cc:
            msg["Cc"] = cc
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = f"<{message_id_for(idempotency_key)}>"
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = references or in_reply_to
        elif references:
            msg["References"] = references
        msg[KEY_HEADER] = idempotency_key
    except ValueError as err:
        raise ValidationError(f"invalid header value: {err}") from err
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg
