"""Who a message is from and who an action reaches, the way each channel names people.

Email addresses are parsed with the standard library (RFC 5322), never by splitting on ``<``. A
channel names its recipients by email address, phone number, handle or plain name; the policy
compares them with the handbook's ``known_contacts`` in that channel's terms (DESIGN §2, Policy).
"""
from __future__ import annotations

import email.errors
import email.policy
import email.utils
import re

RECIPIENT_KINDS = ("email", "phone", "handle", "name", "chat")
_PHONE = re.compile(r"^\+?[\d\s().-]{6,}$")
_HEADER = email.policy.default.header_factory


def read_addresses(header: str) -> tuple[list[tuple[str, str]], bool]:
    """Every (display name, address) in an address header, and whether ALL of it read as addresses
    (``a@x; b@y`` or ``a@x b@y`` does not: part of it would be dropped, so nothing may rely on it)."""
    if not header or not header.strip():
        return [], True
    try:
        parsed_header = _HEADER("to", header)
        parsed = [(a.display_name, a.addr_spec) for a in parsed_header.addresses]
        whole = not any(isinstance(d, email.errors.InvalidHeaderDefect) for d in parsed_header.defects)
    except Exception:  # noqa: BLE001 - a header the strict parser cannot read: the lenient one decides
        parsed, whole = email.utils.getaddresses([header]), False
    found = [(name.strip(), addr.strip()) for name, addr in parsed if "@" in addr]
    return found, whole and len(found) == len(parsed)


def parse_addresses(header: str) -> list[tuple[str, str]]:
    """Every (display name, address) in an address header that reads as one."""
    return read_addresses(header)[0]


def reply_address(from_header: str, reply_to_header: str = "") -> tuple[str, str] | None:
    """Whom a reply goes to: the single Reply-To address, else the single sender; None when the
    headers name several (a forged ``From: "jane@x" <a@y>, b@z``), so nobody is guessed."""
    for header in (reply_to_header, from_header):
        found = parse_addresses(header)
        if len(found) == 1:
            return found[0]
        if found:
            return None
    return None


def normalise(kind: str, value: object) -> list[str]:
    """The comparable names of everyone ``value`` reaches on a channel whose recipients are ``kind``."""
    text = str(value or "").strip()
    if not text:
        return []
    if kind == "email":
        found, whole = read_addresses(text)
        # Fail closed: a part that does not read as an address is nobody the owner knows.
        return [addr.lower() for _, addr in found] + ([] if whole else [f"(unreadable) {text}"])
    if kind == "phone" or (kind == "chat" and _PHONE.match(text)):
        digits = re.sub(r"\D", "", text)
        return [("+" if text.startswith("+") else "") + digits] if len(digits) >= 6 else []
    if kind == "handle":
        return [text.lstrip("@").lower()]
    named = parse_addresses(text) if "@" in text else []
    if len(named) == 1 and named[0][0]:  # "Jane Doe <jane@x>" names Jane Doe on a channel of names
        text = named[0][0]
    return [" ".join(text.split()).casefold()]  # a name (or a chat named like a person)
