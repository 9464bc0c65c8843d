"""The executor of approved actions, and the owner's command line.

    python agent_interface.py run                 # the daemon (PM2 app `agent-interface`)
    python agent_interface.py status              # what is going on
    python agent_interface.py pending             # what waits for you
    python agent_interface.py approve <id>        # same as dragging the file to Approved/
    python agent_interface.py reject <id> [--reason TEXT]
    python agent_interface.py retry <task-id>     # try a failed task again
"""
from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
import time
from pathlib import Path

from core.approval.approvals import (APPROVED as APR_APPROVED, EXECUTED, EXPIRED as APR_EXPIRED, FAILED as APR_FAILED,
                                     PENDING as APR_PENDING, REJECTED as APR_REJECTED, Refused, grant_from_row)
from core.config import Settings
from core.daemon import Daemon, FolderFeed, run_daemon
from core.engine.executor import RECHECK_SECONDS
from core.engine.dashboard import DashboardWriter, age, count_files, process_rows, COUNTED
from core.documents import Document, DocumentError, iso, utcnow
from core.errors import AIEmployeeError, TransientError
from core.locks import task_lock
from core.state import is_store_outage
from core.engine.plans import EXPIRED, FAILED, PENDING, QUEUED, REJECTED, SKIPPED, TERMINAL, ProposedStep
from core.tasks import Task, update_task
from core.engine.workflow import Workflow

log = logging.getLogger("agent_interface")
EXECUTOR = "executor"


class AgentInterface:
    def __init__(self, settings: Settings, *, wf: Workflow | None = None) -> None:
        self.settings = settings
        self.wf = wf or Workflow.open(settings, actor="agent_interface")
        self.daemon = Daemon("agent-interface", self.wf.state)
        self.claimed = self.wf.vault.folder("In_Progress", EXECUTOR)
        self._rejections_seen: set[tuple[str, int, int]] = set()
        # Claimed requests whose handling met a state store outage: handled again once it is back.
        self._interrupted: set[Path] = set()
        self.dashboard = DashboardWriter(self.wf.vault, self.wf.state, self.wf.approvals, dry_run=settings.dry_run)

    # -- the daemon -------------------------------------------------------------------------------
    def run(self) -> None:
        self.claimed.mkdir(parents=True, exist_ok=True)
        self.daemon.beat("healthy", "watching Approved/ and Rejected/", force=True)
        for path in self.wf.vault.markdown_files(self.claimed):  # resume what we held before a crash
            self._interrupted.add(path)
        self.guard(self.resume_interrupted)
        next_sweep = next_dashboard = next_janitor = 0.0
        with FolderFeed(self.wf.vault.folder("Approved"), self.settings.rescan_seconds) as approved, \
                FolderFeed(self.wf.vault.folder("Rejected"), self.settings.rescan_seconds,
                           only_when_changed=True) as rejected:
            while not self.daemon.stop.is_set():
                outage = self.daemon.store_outage()
                if outage is not None:
                    # Nothing is executed without the ledger: Approved/ is left as it is (not refused,
                    # not moved) and looked at again once the store is back. The Dashboard says so.
                    self.daemon.beat("degraded", f"the state store is unavailable: {outage.reason}; "
                                                 "nothing is executed until it is back")
                    now = time.monotonic()
                    if now >= next_dashboard:
                        self.guard(self.dashboard.refresh, outage)
                        next_dashboard = now + 2.0
                    self.daemon.stop.wait(0.25)
                    approved.rescan_now()
                    rejected.rescan_now()
                    continue
                if self._interrupted:
                    self.guard(self.resume_interrupted)
                for path in approved.wait(self.daemon.stop, timeout=0.25):
                    if self.daemon.stop.is_set() or self.daemon.store_outage() is not None:
                        break
                    self.guard(self.take_approved, path)
                for path in rejected.wait(self.daemon.stop, timeout=0.0):
                    self.guard(self.record_rejection, path)
                now = time.monotonic()
                self.guard(self.retry_due)
                if now >= next_sweep:
                    self.guard(self.expire_due)
                    next_sweep = now + min(30.0, self.settings.rescan_seconds)
                if now >= next_janitor:
                    self.guard(self.wf.vault.remove_stale_temporaries)
                    next_janitor = now + 3600.0
                if now >= next_dashboard:
                    self.guard(self.dashboard.refresh)
                    next_dashboard = now + 2.0
                self.daemon.beat("healthy", "watching Approved/ and Rejected/")

    def guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as err:  # one bad file never stops the executor
            if is_store_outage(err):  # not the file's fault: everything waits for the store
                self.daemon.store_failed(err)
                return
            log.exception("%s failed", getattr(fn, "__name__", fn))
            self.daemon.beat("degraded", f"{getattr(fn, '__name__', 'work')}: {err}", error=str(err))

    def take_approved(self, path: Path) -> None:
        if path.parent != self.wf.vault.folder("Approved") or path.name.startswith(".") or not path.name.endswith(".md"):
            return
        if path.is_symlink():
            self._refuse(path, "a symbolic link is not an approval", None)
            return
        claimed = self.wf.vault.claim(path, self.claimed)
        if claimed is not None:
            self._handle_claimed(claimed)

    def _handle_claimed(self, path: Path, *, recovering: bool = False) -> None:
        """Handle a request we hold; if the store fails meanwhile, it stays held (In_Progress/executor/)
        and is handled again, as after a crash, once the store is back: the ledger keeps an action
        that began from running twice, and a grant that was recorded is carried on, never refused."""
        try:
            self.handle_approved(path, recovering=recovering)
        except Exception as err:
            if is_store_outage(err):
                self._interrupted.add(path)
            else:  # a bug: not tried again at every turn; it stays held until the next start
                self._interrupted.discard(path)
            raise
        self._interrupted.discard(path)

    def resume_interrupted(self) -> None:
        """The requests held when the store failed (or when we crashed): carried on, oldest first.
        A store outage ends the pass (the rest wait with it); any other error, only that request's."""
        for path in sorted(self._interrupted):
            if not path.exists():
                self._interrupted.discard(path)
                continue
            try:
                self._handle_claimed(path, recovering=True)
            except Exception as err:
                if is_store_outage(err):
                    raise
                log.exception("could not carry on with %s", path.name)

    # -- approvals ---------------------------------------------------------------------------------
    def handle_approved(self, path: Path, *, recovering: bool = False) -> None:
        row = self._row_for(path)
        if recovering and row is not None and row["status"] in (EXECUTED, APR_FAILED):
            self._finish_recovered(path, row)
            return
        try:
            grant = self.wf.approvals.accept(path)
        except Refused as why:
            self._refuse(path, why, row)
            return
        self._retire_pending_twin(f"Approved/{path.name}", grant.id)
        with task_lock(self.settings.state_dir, grant.task_id):
            step_title = next((s.title for s in self.wf.plans.steps(grant.task_id) if s.no == grant.step_no), "")
            if self.wf.execute(grant, step_title).deferred_until is None:
                self._finish_file(path, self.wf.approvals.get(grant.id))
            # else: the server queued it; the request waits in In_Progress/executor/ (see retry_due)
            self._settle_task_locked(grant.task_id)

    def retry_due(self) -> int:
        """Ask the servers again about writes they queued (the channel was down or rate limited), once
        their time has come. Nothing waits for them meanwhile; one indexed query when none is due.
        A server that cannot be reached ends this pass: the rest are asked on a later one."""
        count = 0
        for step in self.wf.plans.queued_due():
            with task_lock(self.settings.state_dir, step.task_id):
                current = next((s for s in self.wf.plans.steps(step.task_id) if s.no == step.no), None)
                if current is None or current.status != QUEUED:
                    continue
                row = self.wf.approvals.for_step(step.task_id, step.no)
                # Executed already: the server's own retry went through first; asking reads its record.
                if row is None or row["status"] not in (APR_APPROVED, EXECUTED):
                    why = f"its approval is {row['status'] if row else 'gone'}"
                    self.wf.close_step(step.task_id, step.no, FAILED, why)
                    self._settle_task_locked(step.task_id)
                    continue
                try:
                    execution = self.wf.execute(grant_from_row(row), current.title, patient=True)
                except Exception:
                    # Whatever broke, the step is not asked about again before its next turn.
                    self.wf.plans.update_step(step.task_id, step.no, status=QUEUED, error=current.error,
                                              due=time.time() + RECHECK_SECONDS)
                    raise
                if execution.deferred_until is None and row["file_name"]:
                    path = self.claimed / row["file_name"]
                    if path.exists():
                        self._finish_file(path, self.wf.approvals.get(row["id"]))
                self._settle_task_locked(step.task_id)
                count += 1
                if execution.deferred_until is not None and execution.outcome.deferred is None:
                    break  # the server itself could not be reached
        return count

    def _finish_recovered(self, path: Path, row: dict) -> None:
        """A claimed approval that ran before the crash. The server may have marked it executed
        before we recorded the step: running it again through the ledger records the outcome
        without acting twice (the ledger returns it, or the server replays it for the same key)."""
        with task_lock(self.settings.state_dir, row["task_id"]):
            step = next((s for s in self.wf.plans.steps(row["task_id"]) if s.no == row["step_no"]), None)
            if row["status"] == EXECUTED and step is not None and step.status not in TERMINAL:
                self.wf.execute(grant_from_row(row), step.title)
                row = self.wf.approvals.get(row["id"])
            self._finish_file(path, row)
            self._settle_task_locked(row["task_id"])

    def _row_for(self, path: Path) -> dict | None:
        try:
            approval_id = str(Document.from_bytes(path.read_bytes()).meta.get("id") or "")
        except (DocumentError, OSError):
            return None
        return self.wf.approvals.get(approval_id) if approval_id else None

    def _finish_file(self, path: Path, row: dict) -> None:
        ok = row["status"] == EXECUTED
        try:
            update_task(self.wf.vault, path, status="executed" if ok else "failed", decided_by=row["approved_by"],
                        finished=iso(utcnow()), **({} if ok else {"reason": row["note"] or "failed"}))
        except DocumentError:
            pass
        self.wf.vault.move(path, self.wf.vault.folder("Completed" if ok else "Failed"))

    def _retire_pending_twin(self, decided_as: str, approval_id: str, *, status: str = "superseded",
                             folder: str = "Completed") -> None:
        """A copy (or hard link) of a request put in Approved/ (or Rejected/) is the owner's decision
        on it: once it is taken, the request's own file must not linger in Pending_Approval/ saying
        "pending". It is not deleted (it may hold the owner's edits): it is marked and moved beside
        the decided copy, under a name of its own."""
        row = self.wf.approvals.get(approval_id)
        twin = self.wf.vault.folder("Pending_Approval") / row["file_name"] if row and row["file_name"] else None
        if twin is None or twin.is_symlink() or not twin.is_file():
            return
        try:
            doc = Document.from_bytes(twin.read_bytes())
            if doc.meta.get("id") != approval_id:
                return  # some other file that happens to bear the name: not ours to touch
            update_task(self.wf.vault, twin, doc, status=status, decided_as=decided_as)
            dest = self.wf.vault.free_name(self.wf.vault.folder(folder), f"{twin.stem}.{status}.md")
            self.wf.vault.move(twin, dest.parent, dest.name)
        except (DocumentError, OSError):
            return
        self.wf.audit.record("approval.twin_retired", target=twin.name, task_id=row["task_id"],
                             result={"status": status, "moved_to": self.wf.vault.relative(dest),
                                     "reason": f"decided as {decided_as}"})

    def _refuse(self, path: Path, why: Refused | str, row: dict | None) -> None:
        """Refused files go to Rejected/ with the reason. What it means for the request we issued:
        a refusal of an altered copy leaves the owner's genuine request pending (and puts it back in
        Pending_Approval/ if the refused file was its only one); an approval that had just expired
        closes its step as expired; anything else was not ours, or was used already."""
        reason, kind = str(why), getattr(why, "kind", "unknown")
        if not path.is_symlink():  # never read or write through a link: it may point outside the vault
            try:
                update_task(self.wf.vault, path, status="refused", refusal_reason=reason)
            except (DocumentError, OSError):
                pass
        dest = self.wf.vault.free_name(self.wf.vault.folder("Rejected"), path.name)
        os.rename(path, dest)  # the file, or the link itself
        self.wf.audit.record("approval.refused", target=path.name, approval_status="refused",
                             result={"reason": reason}, task_id=row["task_id"] if row else None)
        if row is None:
            return
        if kind == "altered" and self.wf.approvals.reissue(row):
            self.wf.audit.record("approval.reissued", target=row["file_name"], task_id=row["task_id"],
                                 result={"reason": "the refused file was the request itself: it is back, unchanged"})
        elif kind == "expired":
            self._retire_pending_twin(f"Rejected/{dest.name}", row["id"], status="expired", folder="Rejected")
            self.wf.audit.record("approval.expired", target=row["file_name"], approval_status="expired",
                                 task_id=row["task_id"], idempotency_key=row["id"])
            self._close_step(row, EXPIRED, "approval expired")

    def record_rejection(self, path: Path) -> None:
        if path.name.startswith(".") or not path.name.endswith(".md") or path.name.endswith(".reason.md"):
            return
        try:
            st = path.lstat()
        except FileNotFoundError:
            return
        # Rejected/ only grows: a rescan must not parse every file in it again. Seen by name AND
        # version, so a file moved in over a refused one of the same name is still read.
        seen = (path.name, st.st_ino, st.st_mtime_ns)
        if seen in self._rejections_seen or stat.S_ISLNK(st.st_mode):
            return
        self._rejections_seen.add(seen)
        try:
            self._record_rejection(path, st)
        except Exception as err:
            if is_store_outage(err):
                self._rejections_seen.discard(seen)  # read again once the store is back
            raise

    def _record_rejection(self, path: Path, st: os.stat_result) -> None:
        try:
            doc = Document.from_bytes(path.read_bytes())
        except (DocumentError, OSError):
            return
        if doc.meta.get("status") in ("refused", "expired"):
            return  # put here by us, with the reason: the owner decided nothing
        row = self.wf.approvals.get(str(doc.meta.get("id") or "")) if doc.meta.get("id") else None
        if row is None or row["status"] != APR_PENDING:
            return  # already handled, or not ours
        if self.wf.approvals.set_status(row["id"], APR_REJECTED, note="rejected by the owner", only_from=(APR_PENDING,)):
            if doc.meta.get("status") != "rejected":
                try:
                    update_task(self.wf.vault, path, doc, status="rejected", decided=iso(utcnow()))
                except OSError:
                    pass
            self._retire_pending_twin(f"Rejected/{path.name}", row["id"], folder="Rejected")
            self.wf.audit.record(f"{row['skill']}.{row['action']}", target=row["file_name"], approval_status="rejected",
                                 approved_by=None, result="rejected by the owner", task_id=row["task_id"],
                                 idempotency_key=row["id"])
            self._close_step(row, REJECTED, "rejected by the owner")

    def expire_due(self) -> int:
        count = 0
        for row in self.wf.approvals.due_for_expiry():
            if not self.wf.approvals.set_status(row["id"], APR_EXPIRED, note="expired", only_from=(APR_PENDING,)):
                continue
            path = self.wf.vault.root / "Pending_Approval" / row["file_name"]
            if path.exists():
                try:
                    update_task(self.wf.vault, path, status="expired")
                except DocumentError:
                    pass
                self.wf.vault.move(path, self.wf.vault.folder("Rejected"))
            self.wf.audit.record("approval.expired", target=row["file_name"], approval_status="expired",
                                 task_id=row["task_id"], idempotency_key=row["id"])
            self._close_step(row, EXPIRED, "approval expired")
            count += 1
        return count

    def _close_step(self, row: dict, status: str, note: str) -> None:
        with task_lock(self.settings.state_dir, row["task_id"]):
            self.wf.close_step(row["task_id"], row["step_no"], status, note)
            self._settle_task_locked(row["task_id"])

    def _settle_task_locked(self, task_id: str) -> None:
        """After an approval ends: finish the task, or hand it back to the loop if steps remain."""
        path = self.wf.vault.find_task(task_id)
        if path is None or path.parent.name in ("Completed", "Failed", "Quarantine"):
            return
        if self.wf.plans.get(task_id) is None:
            return  # not planned by us (yet): an approval never settles a task it is not a step of
        try:
            task = Task.load(path)
        except DocumentError:
            return
        where = self.wf.settle(task)
        if where == "active" and path.parent.parent.name == "In_Progress":
            if any(s.status == PENDING for s in self.wf.plans.steps(task_id)):
                self.wf.vault.move(task.path, self.wf.vault.folder("Needs_Action"))


# -- the owner's command line -------------------------------------------------------------------------
def find_approval(wf: Workflow, ident: str) -> dict:
    row = wf.approvals.get(ident)
    if row is None:
        matches = [r for r in wf.approvals.waiting() if ident in r["id"] or ident in r["file_name"]]
        if len(matches) != 1:
            raise SystemExit(f"no single pending approval matches {ident!r} ({len(matches)} found); see `pending`")
        row = matches[0]
    return row


def cmd_status(wf: Workflow, args: argparse.Namespace) -> int:
    print(f"Vault: {wf.vault.root}    Mode: {'DRY RUN (nothing leaves this machine)' if wf.settings.dry_run else 'LIVE'}")
    print("\nFolders:")
    for name in COUNTED:
        print(f"  {name:<17}{count_files(wf.vault.root / name):>7}")
    waiting = wf.approvals.waiting()
    print(f"\nWaiting for your approval: {len(waiting)}")
    now = time.time()
    for row in waiting[:20]:
        print(f"  {row['id']}  {row['skill']}.{row['action']:<22} waiting {age(now - row['created'])}")
    print("\nProcesses:")
    for process, status, detail, seen in process_rows(wf.state) or [("(none)", "no process has reported", "", "")]:
        print(f"  {process:<18}{status:<16}{seen:<10}{detail}")
    errors = [r for r in wf.state.health_rows() if r["last_error"]]
    if errors:
        print("\nLast errors:")
        for r in errors:
            print(f"  {r['process']}: {r['last_error']} ({age(now - r['last_error_at'])} ago)")
    if wf.policy.current() and wf.policy.error:
        print(f"\nPolicy: {wf.policy.error}")
    return 0


def cmd_pending(wf: Workflow, args: argparse.Namespace) -> int:
    waiting = wf.approvals.waiting()
    if not waiting:
        print("Nothing is waiting for your approval.")
    now = time.time()
    for row in waiting:
        expires = f"expires in {age(row['expires'] - now)}" if row["expires"] else "never expires"
        print(f"{row['id']}  {row['skill']}.{row['action']}  task {row['task_id']}  "
              f"waiting {age(now - row['created'])}, {expires}\n    Pending_Approval/{row['file_name']}")
    return 0


def _move_pending(wf: Workflow, ident: str, folder: str, **changes: object) -> Path:
    row = find_approval(wf, ident)
    if row["status"] != APR_PENDING:
        raise SystemExit(f"approval {row['id']} is {row['status']}, not pending")
    path = wf.vault.root / "Pending_Approval" / row["file_name"]
    moved = SystemExit(f"{wf.vault.relative(path)} is no longer in Pending_Approval/: it was moved already "
                       "(dragged, or decided by another command); see `status`")
    try:
        if changes:
            update_task(wf.vault, path, **changes)
        return wf.vault.move(path, wf.vault.folder(folder))
    except FileNotFoundError:  # another approve/reject, or the owner's drag, won the race
        raise moved from None


def cmd_approve(wf: Workflow, args: argparse.Namespace) -> int:
    dest = _move_pending(wf, args.id, "Approved")
    print(f"Approved: moved to {wf.vault.relative(dest)}; the agent interface executes it.")
    _warn_if_down(wf)
    return 0


def cmd_reject(wf: Workflow, args: argparse.Namespace) -> int:
    changes = {"rejection_reason": args.reason} if args.reason else {}
    dest = _move_pending(wf, args.id, "Rejected", **changes)
    AgentInterface(wf.settings, wf=wf).record_rejection(dest)
    print(f"Rejected: {wf.vault.relative(dest)}")
    return 0


def cmd_retry(wf: Workflow, args: argparse.Namespace) -> int:
    path = wf.vault.find_task(args.id)
    if path is None or path.parent.name != "Failed":
        raise SystemExit(f"no task {args.id!r} in Failed/")
    with task_lock(wf.settings.state_dir, args.id), wf.state.transaction():  # all of the plan's change, or none
        steps = wf.plans.steps(args.id)
        again = [ProposedStep(s.skill, s.action, s.params, s.title) for s in steps if s.status == FAILED]
        for s in steps:
            if s.status == FAILED:
                wf.plans.update_step(args.id, s.no, status=SKIPPED, error=f"retried as a new step: {s.error}")
        if again:
            wf.plans.add_steps(args.id, "retry", again)
        wf.plans.set_round(args.id, 0, "active", note=f"retried by the owner at {iso(utcnow())}")
        doc = Document.from_bytes(path.read_bytes())
        for key in ("reason", "retry", "outcome", "finished"):
            doc.meta.pop(key, None)
        doc.meta["status"] = "needs_action"
        wf.vault.write_atomic(path, doc.render())
        dest = wf.vault.move(path, wf.vault.folder("Needs_Action"))
    wf.audit.record("task.retried", target=wf.vault.relative(dest), task_id=args.id, approved_by="owner")
    print(f"Retrying: {wf.vault.relative(dest)} ({len(again)} step(s) to run again)")
    return 0


def _warn_if_down(wf: Workflow) -> None:
    rows = {r["process"]: r for r in wf.state.health_rows()}
    row = rows.get("agent-interface")
    if row is None or time.time() - row["heartbeat"] > 30:
        print("Note: the agent interface is not running; start the suite (see README) to execute it.")


def cmd_briefing(settings: Settings, args: argparse.Namespace) -> int:
    """The briefing on demand: written now; its findings are listed (the Monday task files them as requests)."""
    from core.engine.skills import ActionContext, SkillRegistry
    registry = SkillRegistry().discover(settings.skills_dir)
    params = {"week": args.week} if args.week else {}
    outcome = registry.invoke("ceo_briefing_skill", "generate_briefing", params,
                              ActionContext("owner:briefing", None, None, settings.dry_run, settings))
    if not outcome.success:
        print(f"briefing: {outcome.error}", file=sys.stderr)
        return 1
    data = outcome.data
    print(f"Wrote {data['path']} (the week {data['week_start']} to {data['week_end']}).")
    if data.get("stale"):
        print(f"Stale or missing: {', '.join(data['stale'])}.")
    for finding in data.get("subscriptions") or []:
        print(f"- {finding['merchant']}: {finding['reason']} (saves {finding['saving']} {finding.get('currency') or ''}"
              " a month)")
    return 0


def cmd_site(settings: Settings, args: argparse.Namespace) -> int:
    from core.engine.mcp_client import McpClient
    from core.engine.site_login import check, login
    client = McpClient.for_service(settings, "browser")
    try:
        if args.command == "login":
            return login(client, args.site, wait_s=args.wait)
        return check(client, args.site)
    except TransientError as err:
        print(f"The browser server does not answer ({err}); start the suite first (./scripts/start.sh).",
              file=sys.stderr)
        return 1
    except AIEmployeeError as err:
        print(f"{args.site}: {err}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent_interface.py", description="AI Employee: executor and owner's CLI")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the executor daemon")
    sub.add_parser("status", help="folders, waiting approvals, processes, last errors")
    sub.add_parser("pending", help="approval requests waiting for you")
    p = sub.add_parser("approve", help="approve a pending request (same as moving it to Approved/)")
    p.add_argument("id")
    p = sub.add_parser("reject", help="reject a pending request")
    p.add_argument("id")
    p.add_argument("--reason", default="")
    p = sub.add_parser("retry", help="try a failed task again")
    p.add_argument("id")
    p = sub.add_parser("login", help="log in to WhatsApp Web or LinkedIn once, in a visible browser window")
    p.add_argument("site", choices=["whatsapp", "linkedin"])
    p.add_argument("--wait", type=float, default=300.0, help="seconds to wait for you to log in (default 300)")
    p = sub.add_parser("check", help="the selectors self-test: which elements of a site's page no longer match")
    p.add_argument("site", choices=["whatsapp", "linkedin"])
    p = sub.add_parser("briefing", help="write the CEO briefing of a week now (default: the last full week)")
    p.add_argument("--week", help="any day (YYYY-MM-DD) of the week to brief")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except AIEmployeeError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    if args.command == "run":
        return run_daemon("agent-interface", AgentInterface, settings=settings)
    if args.command in ("login", "check"):
        return cmd_site(settings, args)
    if args.command == "briefing":
        return cmd_briefing(settings, args)
    logging.basicConfig(level=logging.WARNING)
    wf = Workflow.open(settings, actor="owner")
    return {"status": cmd_status, "pending": cmd_pending, "approve": cmd_approve, "reject": cmd_reject,
            "retry": cmd_retry}[args.command](wf, args)


if __name__ == "__main__":
    sys.exit(main())
