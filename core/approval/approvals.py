"""Approval requests and grants.

A grant exists only in the state store: issued by us (a request file for the owner, or a policy
rule), bound to one action and its exact parameters, used once. A file in ``Approved/`` is only
the owner's signal; it is checked against the store and refused unless it matches a pending
request we issued that has not expired. The owner may edit the ``## Message`` text; nothing else.
"""
from __future__ import annotations

import datetime as dt
import html
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.approval.policy import PolicySource
from core.documents import APPROVAL_FOOTER_PREFIX, Document, DocumentError, fence, iso, section, utcnow
from core.state import StateStore, canonical, dumps, loads
from core.vault import Vault, slug

FOOTER = f"{APPROVAL_FOOTER_PREFIX} to approve, or to Rejected/ to reject."
# Approval record states.
PENDING, APPROVED, REJECTED, EXPIRED, EXECUTED, FAILED = "pending", "approved", "rejected", "expired", "executed", "failed"


class Refused(Exception):
    """The file in ``Approved/`` cannot be accepted; the message says why, for the owner.

    ``kind`` says what the refusal means for the request we issued: ``unknown`` (not ours, or
    unreadable), ``spent`` (used or decided already), ``expired`` (it just expired), or ``altered``
    (ours, with more than the message changed: the owner's genuine request stands untouched)."""

    def __init__(self, message: str, kind: str = "unknown") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Grant:
    id: str
    task_id: str
    step_no: int
    skill: str
    action: str
    params: dict[str, Any]
    approved_by: str
    original_params: dict[str, Any]

    @property
    def idempotency_key(self) -> str:
        return self.id


def plain_to_html(text: str) -> str:
    """The owner's edited text as the HTML part: escaped, a paragraph per blank-line block."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs) or "<p></p>"


def new_approval_id() -> str:
    return f"apr-{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(5)}"


def grant_from_row(row: Any) -> Grant:
    return Grant(row["id"], row["task_id"], row["step_no"], row["skill"], row["action"],
                 loads(row["approved_params"]) or loads(row["params"]), row["approved_by"] or "", loads(row["params"]))


class Approvals:
    def __init__(self, vault: Vault, state: StateStore, ttl_hours: float = 24.0, *,
                 policy: PolicySource | None = None) -> None:
        self.vault = vault
        self.state = state
        self.default_ttl_hours = ttl_hours
        self.policy = policy

    @classmethod
    def open(cls, vault: Vault, state: StateStore, settings: Any, policy: PolicySource | None = None) -> "Approvals":
        """Requests live as long as the handbook's ``approval_ttl_hours`` says (read when a request
        is filed, so an edit applies at once), else APPROVAL_TTL_HOURS."""
        return cls(vault, state, settings.approval_ttl_hours,
                   policy=policy or PolicySource(vault.root / "Company_Handbook.md"))

    @property
    def ttl_hours(self) -> float:
        handbook = self.policy.current().approval_ttl_hours if self.policy is not None else None
        return self.default_ttl_hours if handbook is None else handbook

    def get(self, approval_id: str) -> dict | None:
        rows = self.state.query("SELECT * FROM approvals WHERE id=?", (approval_id,))
        return dict(rows[0]) if rows else None

    def for_step(self, task_id: str, step_no: int) -> dict | None:
        rows = self.state.query("SELECT * FROM approvals WHERE task_id=? AND step_no=?", (task_id, step_no))
        return dict(rows[0]) if rows else None

    # -- issuing ------------------------------------------------------------------------------------
    def request(self, *, task_id: str, step_no: int, skill: str, action: str, params: dict[str, Any],
                text_param: str | None, risk: str, reason: str, subject: str, details: str = "",
                ttl_hours: float | None = None, html_param: str | None = None) -> dict:
        """File a request for the owner. Idempotent per (task, step): a crash between the record and
        the file is repaired by calling again."""
        ttl = self.ttl_hours if ttl_hours is None else ttl_hours
        approval_id = new_approval_id()
        name = f"{action.upper()}_{slug(subject, 30)}_{approval_id}.md"
        now = time.time()
        row = dict(self._record_once(
            id=approval_id, task_id=task_id, step_no=step_no, skill=skill, action=action, params=canonical(params),
            text_param=text_param, html_param=html_param if text_param else None, risk=risk, reason=reason,
            details=details or None, file_name=name, status=PENDING, created=now, expires=now + ttl * 3600 if ttl > 0 else None))
        self.ensure_file(row, details)
        return row

    def ensure_file(self, row: dict, details: str = "") -> None:
        """Write the request file of a pending approval unless it is somewhere in the vault already."""
        if row["status"] == PENDING and row["file_name"] and self.locate(row) is None:
            try:
                self.vault.write_atomic(self.vault.folder("Pending_Approval") / row["file_name"],
                                        self._render(row, details), exclusive=True)
            except FileExistsError:
                pass  # another process wrote it between our look and our write

    def reissue(self, row: dict) -> bool:
        """Put a still-pending request back in ``Pending_Approval/`` when its only file was refused
        (edited beyond the message): the owner can approve the original or reject it."""
        row = self.get(row["id"]) or row
        path = self.vault.folder("Pending_Approval") / row["file_name"]
        if row["status"] != PENDING or not row["file_name"] or path.exists():
            return False
        try:
            self.vault.write_atomic(path, self._render(row), exclusive=True)
        except FileExistsError:
            return False
        return True

    def grant_by_policy(self, *, task_id: str, step_no: int, skill: str, action: str, params: dict[str, Any],
                        rule: str) -> Grant:
        """Record a grant approved by a handbook rule (no file: nobody needs to look at it)."""
        now = time.time()
        return grant_from_row(self._record_once(
            id=new_approval_id(), task_id=task_id, step_no=step_no, skill=skill, action=action, params=canonical(params),
            risk="low", reason=f"rule {rule}", file_name="", status=APPROVED, created=now,
            approved_by=f"policy:{rule}", approved_params=canonical(params), decided=now))

    def _record_once(self, **columns: Any) -> sqlite3.Row:
        """Insert the approval of a (task, step) unless one exists; the row that stands either way."""
        with self.state.transaction() as db:
            db.execute(f"INSERT OR IGNORE INTO approvals({', '.join(columns)}) VALUES({', '.join('?' * len(columns))})",
                       tuple(columns.values()))
            return db.execute("SELECT * FROM approvals WHERE task_id=? AND step_no=?",
                              (columns["task_id"], columns["step_no"])).fetchone()

    def _render(self, row: dict, details: str = "") -> str:
        details = details or row.get("details") or ""
        params = loads(row["params"])
        text_param, html_param = row["text_param"], row["html_param"]
        shown = {k: v for k, v in params.items() if k not in (text_param, html_param)}
        meta = {
            "type": "approval_request", "id": row["id"], "task_id": row["task_id"], "skill": row["skill"],
            "action": row["action"], "params": shown, "risk": row["risk"], "reason": row["reason"],
            "created": iso(dt.datetime.fromtimestamp(row["created"], dt.timezone.utc)),
            "expires": iso(dt.datetime.fromtimestamp(row["expires"], dt.timezone.utc)) if row["expires"] else None,
            "status": PENDING,
        }
        body = [f"# Approve: {row['action'].replace('_', ' ')}", ""]
        if details:
            body += [details, ""]
        if html_param and params.get(html_param):
            # Mail programs show the HTML part: the owner sees it, and an edit of the message replaces
            # it, so what they approve is exactly what every recipient reads.
            body += ["### The HTML version (what most mail programs show)", "",
                     "_Shown for you to read. To change what is sent, edit the message below: this HTML version is "
                     "then replaced by your text, so every recipient reads what you approved._", "",
                     fence(str(params[html_param]), "html"), ""]
        if text_param:
            body += ["_You may edit the message below before approving; the parameters above are fixed._", ""]
            body += ["## Message", str(params.get(text_param, "")), ""]
        body += [FOOTER, ""]
        return Document(meta, "\n".join(body)).render()

    # -- locating -------------------------------------------------------------------------------------
    def locate(self, row: dict) -> Path | None:
        name = row["file_name"]
        if not name:
            return None
        for folder in ("Pending_Approval", "Approved", "Rejected", "Completed", "Failed"):
            path = self.vault.root / folder / name
            if path.exists():
                return path
        for path in (self.vault.root / "In_Progress").glob(f"*/{name}"):
            return path
        return None

    # -- the owner's decision ---------------------------------------------------------------------
    def accept(self, path: Path) -> Grant:
        """Turn the owner's approved file into a grant, or raise ``Refused`` with the reason."""
        try:
            doc = Document.from_bytes(path.read_bytes())
        except (DocumentError, OSError) as err:
            raise Refused(f"the file cannot be read as an approval request: {err}") from err
        approval_id = str(doc.meta.get("id") or "")
        row = self.get(approval_id) if approval_id else None
        if row is None or not row["file_name"]:
            raise Refused("this approval was not issued by the AI Employee (unknown id); nothing was executed")
        if row["status"] in (APPROVED, EXECUTED, FAILED):
            if row["status"] == APPROVED and row["approved_by"] == "owner" and path.name == row["file_name"]:
                return grant_from_row(row)  # accepted before a crash (or queued): carry on with that file
            raise Refused(f"approval {approval_id} was already used ({row['status']}); an approval executes at most once",
                          "spent")
        if row["status"] != PENDING:
            raise Refused(f"approval {approval_id} is {row['status']} and can no longer be approved", "spent")
        if row["expires"] and row["expires"] < time.time():
            self.set_status(approval_id, EXPIRED, note="expired before it was approved")
            raise Refused(f"approval {approval_id} expired at {iso(dt.datetime.fromtimestamp(row['expires'], dt.timezone.utc))}",
                          "expired")
        for key in ("task_id", "skill", "action"):
            if str(doc.meta.get(key)) != str(row[key]):
                raise Refused(f"the file's {key} was changed after it was issued; only the message may be edited",
                              "altered")
        params = loads(row["params"])
        text_param, html_param = row["text_param"], row["html_param"]
        fixed = {k: v for k, v in params.items() if k not in (text_param, html_param)}
        if canonical(doc.meta.get("params") or {}) != canonical(fixed):
            raise Refused("the parameters were changed after the request was issued; only the message may be edited. "
                          "Reject this request and ask again if the recipient or amounts must change", "altered")
        final = dict(params)
        if text_param:
            edited = section(doc.body, "Message", APPROVAL_FOOTER_PREFIX)
            if edited is None:
                raise Refused("the '## Message' heading or the closing line 'Move this file to Approved/ ...' is "
                              "missing, so where the message ends is unclear; nothing was sent", "altered")
            original = str(params.get(text_param, ""))
            if edited == original.strip("\n"):
                edited = original  # the same text (the file shows it without its outer blank lines)
            final[text_param] = edited
            if html_param and params.get(html_param) and edited != original:
                final[html_param] = plain_to_html(edited)
        with self.state.transaction() as db:
            cur = db.execute("UPDATE approvals SET status=?, approved_by='owner', approved_params=?, decided=? "
                             "WHERE id=? AND status=?", (APPROVED, dumps(final), time.time(), approval_id, PENDING))
            if cur.rowcount != 1:
                raise Refused(f"approval {approval_id} was decided by another process", "spent")
            row = db.execute("SELECT * FROM approvals WHERE id=?", (approval_id,)).fetchone()
        return grant_from_row(row)

    def set_status(self, approval_id: str, status: str, *, note: str | None = None, only_from: tuple[str, ...] = ()) -> bool:
        with self.state.transaction() as db:
            sql = "UPDATE approvals SET status=?, note=COALESCE(?, note), decided=? WHERE id=?"
            args: tuple = (status, note, time.time(), approval_id)
            if only_from:
                sql += f" AND status IN ({','.join('?' * len(only_from))})"
                args += only_from
            return db.execute(sql, args).rowcount == 1

    def due_for_expiry(self) -> list[dict]:
        return [dict(r) for r in self.state.query(
            "SELECT * FROM approvals WHERE status=? AND expires IS NOT NULL AND expires<?", (PENDING, time.time()))]

    def waiting(self, limit: int | None = None) -> list[dict]:
        return [dict(r) for r in self.state.query(
            "SELECT * FROM approvals WHERE status=? ORDER BY created LIMIT ?", (PENDING, -1 if limit is None else limit))]
