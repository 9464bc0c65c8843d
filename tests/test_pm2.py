"""PM2 for real: the repo's ecosystem.config.js, started by the repo's own pm2 (node_modules/.bin) with a
private PM2_HOME and a temporary vault. Start every app, check each one's heartbeat in the state store and
each server's /health, kill -9 a worker and a server and see PM2 bring them back, run a file drop
through the suite, stop.

pm2 is installed by ./scripts/test.sh (scripts/setup.sh --dev); a missing pm2 fails this test, it
does not skip it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import requests

from core.documents import Document
from tests.conftest import ROOT, free_port, wait_until

PM2 = ROOT / "node_modules" / ".bin" / "pm2"
# Every app of the ecosystem, as PM2 names it; each keeps a heartbeat under that name.
APPS = tuple(json.loads(subprocess.check_output(
    ["node", "-e", "console.log(JSON.stringify(require('./ecosystem.config.js').apps.map(a => a.name)))"],
    cwd=ROOT, text=True)))
SERVERS = {"mcp-email": "EMAIL_MCP_PORT", "mcp-browser": "BROWSER_MCP_PORT", "mcp-odoo": "ODOO_MCP_PORT",
           "mcp-twitter": "TWITTER_MCP_PORT",
           "mcp-meta": "META_MCP_PORT"}  # the MCP servers among them
KILL_TIMEOUT = 10.0  # ecosystem.config.js kill_timeout: past it PM2 would SIGKILL
# Variables that would point the suite elsewhere if a developer's shell or .env had them set.
_FOREIGN = ("VAULT_", "STATE_", "SKILLS_", "LLM_", "GMAIL_", "MCP_", "X_", "META_", "ODOO_", "PM2_", "AI_EMPLOYEE_")


@dataclass
class Pm2:
    home: Path
    env: dict[str, str]
    log_dir: Path

    @property
    def vault(self) -> Path:
        return Path(self.env["VAULT_PATH"])

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run([str(PM2), *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, f"pm2 {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def apps(self) -> dict[str, dict]:
        """name -> {pid, status, restarts} from `pm2 jlist`."""
        listing = json.loads(self.run("jlist").stdout)
        return {a["name"]: {"pid": a["pid"], "status": a["pm2_env"]["status"],
                            "restarts": a["pm2_env"]["restart_time"]} for a in listing}

    def heartbeats(self) -> dict[str, tuple[int, float]]:
        """process -> (pid, heartbeat unix time) from the suite's health table."""
        db_path = self.vault / ".state" / "state.db"
        if not db_path.exists():
            return {}
        try:
            db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
            try:
                rows = db.execute("SELECT process, pid, heartbeat FROM health").fetchall()
            finally:
                db.close()
        except sqlite3.OperationalError:  # the table is created by the first process to start
            return {}
        return {process: (pid, beat) for process, pid, beat in rows}

    def diagnostics(self) -> str:
        parts = []
        try:
            parts.append(f"pm2 jlist: {self.apps()}")
        except Exception as err:  # noqa: BLE001 - diagnostics must not hide the real failure
            parts.append(f"pm2 jlist failed: {err}")
        parts.append(f"heartbeats: {self.heartbeats()}")
        for log in sorted(self.log_dir.glob("*.log")) + [self.home / "pm2.log"]:
            if log.exists():
                parts.append(f"--- {log.name}\n{log.read_text('utf-8', 'replace')[-2000:]}")
        return "\n".join(parts)

    def eventually(self, predicate: Callable[[], object], what: str, timeout: float = 30) -> object:
        try:
            return wait_until(predicate, timeout=timeout, interval=0.1, message=what)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{self.diagnostics()}") from None


def _pm2_home(tmp_path: Path) -> Path:
    # PM2 listens on unix sockets inside PM2_HOME, and socket paths are limited to 107 bytes.
    home = tmp_path / "pm2"
    if len(str(home / "interactor.sock")) < 100:
        return home
    return Path(tempfile.mkdtemp(prefix="pm2-"))


@pytest.fixture
def pm2(tmp_path: Path):
    assert PM2.exists(), f"{PM2} is missing: run ./scripts/test.sh (or ./scripts/setup.sh --dev) to install pm2"
    vault = tmp_path / "vault"
    vault.mkdir()
    shutil.copy(ROOT / "core" / "defaults" / "Company_Handbook.md", vault / "Company_Handbook.md")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    env.update({
        "PM2_HOME": str(_pm2_home(tmp_path)),
        "AI_EMPLOYEE_LOG_DIR": str(tmp_path / "logs"),
        "VAULT_PATH": str(vault),
        "STATE_DIR": str(vault / ".state"),
        "SKILLS_DIR": str(ROOT / ".qwen" / "skills"),
        "LLM_BASE_URL": "",  # set and empty: a developer's .env cannot switch the planner
        "DRY_RUN": "true",
        "RESCAN_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        "AGENT_NAME": "reasoning_loop",
        # Processes added to the ecosystem later must not collide with a suite the developer runs.
        **{var: str(free_port()) for var in ("EMAIL_MCP_PORT", "BROWSER_MCP_PORT", "ODOO_MCP_PORT",
                                             "TWITTER_MCP_PORT", "META_MCP_PORT")},
    })
    p = Pm2(Path(env["PM2_HOME"]), env, tmp_path / "logs")
    try:
        yield p
    finally:
        subprocess.run([str(PM2), "kill"], cwd=ROOT, env=env, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
        pid_file = p.home / "pm2.pid"  # only if `pm2 kill` could not reach the daemon
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            except (ValueError, ProcessLookupError):
                pass
        if not str(p.home).startswith(str(tmp_path)):
            shutil.rmtree(p.home, ignore_errors=True)


def _health(port: str) -> dict | None:
    try:
        response = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
    except requests.RequestException:
        return None
    return response.json() if response.status_code == 200 else None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pending_approvals(vault: Path) -> list[Document]:
    folder = vault / "Pending_Approval"
    return [Document.parse(p.read_text("utf-8")) for p in sorted(folder.glob("*.md"))] if folder.exists() else []


def _task(vault: Path, task_id: str) -> Document | None:
    for folder in ("Needs_Action", "In_Progress"):
        for path in (vault / folder).rglob("*.md"):
            doc = Document.parse(path.read_text("utf-8"))
            if doc.meta.get("id") == task_id:
                return doc
    return None


def test_ecosystem_starts_restarts_processes_and_stops(pm2: Pm2) -> None:
    t_start = time.time()
    pm2.run("start", "ecosystem.config.js")

    # Up: every app online, and each of ours beating from the very pid PM2 started.
    def ready() -> dict | None:
        apps, beats = pm2.apps(), pm2.heartbeats()
        if not set(APPS) <= apps.keys() or any(a["status"] != "online" for a in apps.values()):
            return None
        if any(beats.get(name, (None, 0))[0] != apps[name]["pid"] or beats[name][1] < t_start for name in APPS):
            return None
        return apps
    apps = pm2.eventually(ready, "every app online with a fresh heartbeat from its PM2 pid")
    started = time.time() - t_start
    assert all(apps[name]["restarts"] == 0 for name in APPS), apps
    # The processes got the environment of `pm2 start`: they use the temporary vault, not the repo's.
    assert (pm2.vault / "Needs_Action").is_dir() and (pm2.vault / "Dashboard.md").exists()

    # Every server answers /health on the port it was given (no credentials here: not_configured; the
    # browser needs none, only Chromium, which it launches on first use).
    for name, var in SERVERS.items():
        health = pm2.eventually(lambda: _health(pm2.env[var]), f"{name} to answer /health")
        expected = "healthy" if name == "mcp-browser" else "not_configured"
        assert health["status"] == expected and health["service"] == name.removeprefix("mcp-"), health

    # kill -9 of a watcher, a watcher-fed worker and a server: PM2 brings each back (after its 1 s backoff),
    # the new process beats, the server answers again, and nobody else was disturbed.
    t_kill = time.time()
    killed = {name: apps[name] for name in ("watcher-files", "reasoning-loop", "mcp-email")}
    for old in killed.values():
        os.kill(old["pid"], signal.SIGKILL)

    def restarted() -> dict | None:
        now, beats = pm2.apps(), pm2.heartbeats()
        back = {}
        for name, old in killed.items():
            beat = beats.get(name, (None, 0))
            if now[name]["status"] != "online" or now[name]["pid"] in (0, old["pid"]) or beat[0] != now[name]["pid"] \
                    or beat[1] < t_kill:
                return None
            back[name] = now[name]
        return back
    new = pm2.eventually(restarted, "PM2 to restart the killed processes")
    back_after = time.time() - t_kill
    for name, old in killed.items():
        assert new[name]["restarts"] == old["restarts"] + 1, new
        assert not _alive(old["pid"])
    pm2.eventually(lambda: _health(pm2.env["EMAIL_MCP_PORT"]), "the restarted email server to answer /health")
    others = pm2.apps()
    assert all(others[n]["pid"] == apps[n]["pid"] and others[n]["restarts"] == 0
               for n in APPS if n not in killed), f"the other processes were disturbed: {others}"

    # The restarted suite works: a dropped file becomes a task, a plan and an approval request
    # (the shipped handbook files invoices with vault_skill.file_document, which needs the owner).
    staging = pm2.vault.parent / "staging"
    staging.mkdir()
    (staging / "invoice-0042.txt").write_text("Invoice 0042 from Acme Ltd, total 120.00 EUR\n", "utf-8")
    t_drop = time.time()
    os.rename(staging / "invoice-0042.txt", pm2.vault / "Inbox" / "invoice-0042.txt")
    approvals = pm2.eventually(lambda: _pending_approvals(pm2.vault), "an approval request in Pending_Approval/")
    flowed_after = time.time() - t_drop
    assert len(approvals) == 1, [a.meta for a in approvals]
    approval = approvals[0].meta
    assert approval["type"] == "approval_request" and approval["status"] == "pending"
    assert (approval["skill"], approval["action"]) == ("vault_skill", "file_document")
    assert approval["params"]["folder"] == "Accounting", approval
    task = pm2.eventually(lambda: (t := _task(pm2.vault, approval["task_id"])) and
                          t.meta.get("status") == "waiting_for_approval" and t,
                          "the task to wait for the owner's approval", timeout=10)
    assert (task.meta["type"], task.meta["file_name"]) == ("file_drop", "invoice-0042.txt"), task.meta
    assert approval["params"]["file"] == task.meta["file"], (approval, task.meta)
    assert (pm2.vault / "Plans" / f"PLAN_{approval['task_id']}.md").exists()

    # Stop: SIGTERM, each process exits by itself well within kill_timeout, nothing is left running.
    pids = {name: a["pid"] for name, a in pm2.apps().items()}
    t_stop = time.time()
    pm2.run("stop", "ecosystem.config.js")
    stopped_in = time.time() - t_stop
    final = pm2.apps()
    assert all(final[name]["status"] == "stopped" for name in APPS), final
    pm2.eventually(lambda: not any(_alive(pid) for pid in pids.values()), "the processes to exit", timeout=10)
    assert stopped_in < KILL_TIMEOUT, f"pm2 stop took {stopped_in:.1f}s: a process ignored SIGTERM"
    assert "sending SIGKILL" not in (pm2.home / "pm2.log").read_text("utf-8", "replace")
    assert "reasoning-loop stopped" in (pm2.log_dir / "reasoning-loop.out.log").read_text("utf-8", "replace")

    print(f"\npm2 timings: healthy {started:.2f}s after start, restarted {back_after:.2f}s after kill -9, "
          f"approval {flowed_after:.2f}s after the drop, stopped in {stopped_in:.2f}s")
