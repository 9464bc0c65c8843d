"""Gmail → ``Needs_Action/``: every new message matching GMAIL_QUERY becomes an email task.

Incremental sync reads the history API from a durable cursor (``gmail.history_id``); the first run,
or a cursor Gmail has forgotten, resynchronises with the query bounded to recent mail. Either way the
candidates are listed with the query and handed to the intake (mcp_servers.gmail.intake, on the
kernel's journal, keyed by the Gmail message id), which makes each message one task however often it
is seen, by this watcher or by the email server. The cursor moves only after every task of the batch
is durable. Backoff, auth pauses and "not configured" are the base's job.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from core.config import Settings, env_float
from core.daemon import run_daemon
from core.errors import NotFoundError, TransientError
from mcp_servers.gmail import GmailConnector, GmailHistoryExpiredError, GmailResponseError
from mcp_servers.gmail.intake import CURSOR, KIND, SOURCE, WATCHER_PROCESS, GmailIntake
from watchers.base import BaseWatcher

log = logging.getLogger("watcher-gmail")
RECENT = "newer_than:7d"        # bounds every listing: a resync never floods the owner with old mail
PAGE_SIZE, MAX_PAGES = 100, 5

__all__ = ["CURSOR", "GmailWatcher", "main"]


class GmailWatcher(BaseWatcher):
    source = SOURCE
    kind = KIND
    process_name = WATCHER_PROCESS
    channel = "gmail"

    def __init__(self, settings: Settings, *, gmail: GmailConnector | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.messages = GmailIntake(settings, self.vault, self.state, self.audit, gmail=gmail)
        self.config, self.gmail = self.messages.config, self.messages.gmail
        self._interval = env_float(settings.env, "GMAIL_POLL_SECONDS", 60.0, minimum=0.05)

    def is_configured(self) -> bool:
        return self.gmail.is_configured()

    def poll_interval(self) -> float:
        return self._interval

    def take(self, message_id: str) -> dict:
        return self.messages.take(message_id)

    def replay(self, source_id: str, detail: dict) -> bool:
        return self.take(source_id)["task_id"] is not None

    # -- a poll ---------------------------------------------------------------------------------------
    def poll(self) -> int:
        try:
            return self._sync()
        except GmailResponseError as err:
            # A 4xx we cannot fix by retrying (a bad GMAIL_QUERY, say): stay up, say so, keep trying.
            raise TransientError(f"Gmail refused a request: {err}") from err

    def _sync(self) -> int:
        cursor = self.state.get_cursor(CURSOR)
        if cursor is None:
            return self.resync("first run")
        try:
            history = self.gmail.history_since(cursor)
        except GmailHistoryExpiredError:
            return self.resync(f"history id {cursor} expired")
        created = self._take_listing() if history["message_ids"] else 0
        self.state.set_cursor(CURSOR, history["history_id"])  # only now: every task above is durable
        return created

    def resync(self, why: str) -> int:
        # The history id is read before listing, so mail arriving during the listing is in the next history.
        start = self.gmail.get_profile()["historyId"]
        created = self._take_listing()
        self.state.set_cursor(CURSOR, str(start))
        log.info("full Gmail resync (%s): %d new task(s)", why, created)
        return created

    def _take_listing(self) -> int:
        ids: list[str] = []
        token = None
        for _ in range(MAX_PAGES):
            page = self.gmail.list_messages(f"{self.config.query} {RECENT}", page_token=token, max_results=PAGE_SIZE)
            ids += [m["id"] for m in page["messages"]]
            token = page["next_page_token"]
            if not token:
                break
        created = 0
        for message_id in reversed(ids):  # Gmail lists newest first; the owner reads oldest first
            try:
                created += self.take(message_id)["created"]
            except NotFoundError:
                continue  # deleted between the listing and the fetch
        return created


def main() -> int:
    return run_daemon(WATCHER_PROCESS, GmailWatcher, "run_polling")


if __name__ == "__main__":
    sys.exit(main())
