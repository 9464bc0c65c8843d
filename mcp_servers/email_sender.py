"""Sends an approved email at most once per grant, whatever crashes, through the state store's ledger.

The ledger row ``email:<grant key>`` is marked ``sending`` durably before Gmail is called and
``succeeded`` (with the result) after. A repeat call returns the recorded result. A row left
``sending``/``unknown`` by a crash or a timeout means the outcome is unknown: Gmail is searched for
the message carrying the key (the connector stamps it into the Message-ID and a header) and the mail
is sent only if it is not there. Calls for one key are serialised, so a retry that arrives while the
first attempt is still in flight waits for it instead of racing it.
"""
from __future__ import annotations

import threading
from collections import defaultdict

from core.errors import TransientError
from core.state import StateStore, loads
from mcp_servers.email_schema import SendEmailInput, blank_to_none
from mcp_servers.gmail_connector import GmailConnector

ACTOR = "mcp-email"


def ledger_key(grant_key: str) -> str:
    return f"email:{grant_key}"


class LedgerSender:
    def __init__(self, gmail: GmailConnector, state: StateStore) -> None:
        self.gmail = gmail
        self.state = state
        self._guard = threading.Lock()
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def send(self, grant_key: str, msg: SendEmailInput) -> dict:
        key = ledger_key(grant_key)
        with self._guard:
            lock = self._locks[key]
        with lock:
            row = self.state.ledger_get(key)
            if row is not None and row["status"] == "succeeded":
                return loads(row["result"])
            if row is not None and row["status"] in ("sending", "unknown"):
                found = self.gmail.find_sent_by_key(grant_key)
                if found is not None:
                    result = {"id": found, "thread_id": blank_to_none(msg.thread_id), "reconciled": True}
                    self.state.ledger_finish(key, "succeeded", result=result)
                    return result
            return self._send(key, grant_key, msg)

    def _send(self, key: str, grant_key: str, msg: SendEmailInput) -> dict:
        self.state.ledger_begin(key, ACTOR, "send_email")
        try:
            result = self.gmail.send(
                msg.to, msg.subject, msg.body, cc=blank_to_none(msg.cc), html=blank_to_none(msg.html),
                in_reply_to=blank_to_none(msg.in_reply_to), references=blank_to_none(msg.references),
                thread_id=blank_to_none(msg.thread_id), idempotency_key=grant_key)
        except TransientError as err:
            # A timeout or 5xx after the request left: it may have been sent. The next call reconciles.
            self.state.ledger_finish(key, "unknown", error=str(err))
            raise
        except Exception as err:
            self.state.ledger_finish(key, "failed", error=str(err))  # refused before sending: may try again
            raise
        self.state.ledger_finish(key, "succeeded", result=result)
        return result
