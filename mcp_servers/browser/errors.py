"""The browser engine's error family, on the taxonomy of core.errors.

A site that needs a human (logged out, a checkpoint) raises an AuthError subclass, so the server base
pauses the channel and files one re-auth task; a page that changed raises SelectorMissing naming the
element; an unreachable site is transient. Every site error carries ``site`` and ``state``, the word
the Dashboard shows (``not_logged_in``, ``checkpoint``, ``selector_missing: <name>``, ``unreachable``).
"""
from __future__ import annotations

from collections.abc import Sequence

from core.errors import AIEmployeeError, AuthError, TransientError, UpstreamError, ValidationError


class URLRefused(ValidationError):
    """The URL policy refuses this URL (scheme, a private address, a host off the allow-list)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"URL refused by the browser's URL policy: {_short(url)}: {reason}", field="url")
        self.url, self.reason = url, reason


class StepsRefused(ValidationError):
    """An automation step list over its limits or malformed; nothing has run."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="steps")


class SiteStateError(AIEmployeeError):
    """An error that is also a state of the site's channel (mixed in before the taxonomy class, whose
    code and HTTP status apply)."""

    site: str
    state: str


class NotLoggedIn(SiteStateError, AuthError):
    def __init__(self, site: str) -> None:
        super().__init__(f"not_logged_in: {site} shows its login page; log in once with "
                         f"`python agent_interface.py login {site}`")
        self.site, self.state = site, "not_logged_in"


class Checkpoint(SiteStateError, AuthError):
    def __init__(self, site: str) -> None:
        super().__init__(f"checkpoint: {site} asks for a security check (captcha, verification code); "
                         f"complete it once with `python agent_interface.py login {site}`")
        self.site, self.state = site, "checkpoint"


class SelectorMissing(SiteStateError, UpstreamError):
    """None of an element's fallback selectors matched: the site changed its page."""

    channel_state = "changed"  # the channel pauses as its own state, not as an answer that went wrong

    def __init__(self, name: str, tried: Sequence[str] = ()) -> None:
        tail = f" (tried: {' | '.join(tried)})" if tried else ""
        super().__init__(f"selector_missing: {name}: none of its selectors matched; the page has changed, "
                         f"update BROWSER_SELECTORS_FILE{tail}"[:600])
        self.name = name
        self.site = name.split(".", 1)[0]
        self.state = f"selector_missing: {name}"


class SiteUnreachable(SiteStateError, TransientError):
    def __init__(self, site: str, detail: str) -> None:
        super().__init__(f"unreachable: {site}: {detail}"[:400])
        self.site, self.state = site, "unreachable"


class BrowserUnavailable(TransientError):
    """Chromium could not be started or has gone away; the next call starts it again."""


class SiteBusy(TransientError):
    """Another call holds the site's page for longer than the wait allows."""


def _short(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[:limit] + "…"
