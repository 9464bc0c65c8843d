"""The last real outcome of each outside channel (Gmail, X, Odoo, ...), whoever met it: a watcher's
poll, a server's tool call or its probe. ``/health`` and the Dashboard report it, so a revoked token
seen by one process is what every process says (DESIGN §8: the channel pauses, health says so)."""
from __future__ import annotations

import logging

from core.errors import AuthError, NotConfiguredError, RateLimitError, TransientError
from core.state import StateStore

log = logging.getLogger(__name__)


def state_of(error: BaseException | None) -> str | None:
    """What an outcome says about the channel; None when it says nothing (our bug, a refused input)."""
    if error is None:
        return "ok"
    if (said := getattr(error, "channel_state", None)) is not None:  # e.g. "changed": the site's page changed
        return said
    if isinstance(error, AuthError):
        return "auth_error"
    if isinstance(error, NotConfiguredError):
        return "not_configured"
    if isinstance(error, RateLimitError):
        return "rate_limited"
    if isinstance(error, TransientError):
        return "unavailable"
    return "ok" if getattr(error, "code", None) in ("UPSTREAM_ERROR", "NOT_FOUND") else None  # it answered


class ChannelReport:
    """Records one channel's outcomes in the state store when they change what it says. The store,
    not this process, is compared with: another process may have seen the channel fail meanwhile."""

    def __init__(self, state: StateStore, channel: str, *, by: str) -> None:
        self.state, self.channel, self.by = state, channel, by

    def record(self, error: BaseException | None) -> None:
        state = state_of(error)
        if state is None:
            return
        detail = "" if error is None else str(error)[:600]  # room for the "how to reconnect" at the end
        try:
            row = self.state.channel(self.channel)
            if row is None or (row["state"], row["detail"]) != (state, detail):
                self.state.set_channel(self.channel, state, detail, by=self.by)
        except Exception as err:  # noqa: BLE001 - health bookkeeping must never fail the call itself
            log.warning("could not record the %s channel's state: %s", self.channel, err)

    def current(self) -> dict | None:
        row = self.state.channel(self.channel)
        return dict(row) if row is not None else None
