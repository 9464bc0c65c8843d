"""Shared test harness: a temporary vault per test, free ports, real subprocesses, bounded polls."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_SKILLS = Path(__file__).resolve().parent / "skills"
PYTHON = sys.executable

PROCESSES = {
    "watcher": ["-m", "watchers.filesystem_watcher"],
    "loop": ["reasoning_loop.py"],
    "agent": ["agent_interface.py", "run"],
    "email": ["-m", "mcp_servers.email_server"],
    "gmail": ["-m", "watchers.gmail_watcher"],
    "odoo": ["-m", "odoo_integration.mcp_server"],
    "browser": ["-m", "mcp_servers.browser_server"],
    "twitter": ["-m", "social_media_integration.twitter_mcp_server"],
    "meta": ["-m", "social_media_integration.facebook_instagram_mcp_server"],
    "scheduler": ["scheduler.py"],
    "whatsapp": ["-m", "watchers.whatsapp_watcher"],
}
HEALTH_NAMES = {"watcher": "watcher-files", "loop": "reasoning-loop", "agent": "agent-interface",
                "email": "mcp-email", "gmail": "watcher-gmail", "odoo": "mcp-odoo", "browser": "mcp-browser",
                "twitter": "mcp-twitter", "meta": "mcp-meta", "scheduler": "scheduler",
                "whatsapp": "watcher-whatsapp"}
# What start_all() starts: the file pipeline. Channel processes need their fakes and ports first.
PIPELINE = ("watcher", "loop", "agent")

DEFAULT_HANDBOOK = """# Test handbook
```yaml
policy:
  auto_approve: []
planning:
  - rule: files
    when: {type: file_drop}
    steps:
      - {skill: test_skill, action: record, title: "Record {file_name}",
         params: {note: "{file_name}", text: "Hello about {file_name}"}}
```
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
               message: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def md_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*.md") if not p.name.startswith(".") and not p.name.endswith(".reason.md"))


@dataclass
class Suite:
    """A temporary vault with the suite's processes run as real subprocesses."""
    tmp: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def vault(self) -> Path:
        return Path(self.env["VAULT_PATH"])

    @property
    def counter_db(self) -> Path:
        return Path(self.env["TEST_COUNTER_DB"])

    def folder(self, name: str) -> Path:
        return self.vault / name

    def start(self, name: str, *, wait: bool = True, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen([PYTHON, *PROCESSES[name]], cwd=ROOT, env={**self.env, **(extra_env or {})},
                                stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        if wait:
            wait_until(lambda: self.heartbeat_pid(HEALTH_NAMES[name]) == proc.pid or proc.poll() is not None,
                       timeout=20, message=f"{name} to start")
            assert proc.poll() is None, f"{name} exited at start:\n{self.log(name)}"
        return proc

    def start_all(self) -> None:
        for name in PIPELINE:
            self.start(name)

    def heartbeat_pid(self, process: str) -> int | None:
        db_path = self.vault / ".state" / "state.db"
        if not db_path.exists():
            return None
        try:
            db = sqlite3.connect(db_path, timeout=5)
            row = db.execute("SELECT pid FROM health WHERE process=?", (process,)).fetchone()
            db.close()
        except sqlite3.OperationalError:
            return None
        return row[0] if row else None

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, name: str) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=15)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def assert_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} died (exit {proc.returncode}):\n{self.log(name)}"

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text("utf-8", "replace")[-4000:] if path.exists() else ""

    def drop(self, name: str, content: bytes | str) -> Path:
        """Drop a file the way a person or a program does: write elsewhere, then move it in."""
        staging = self.tmp / "staging"
        staging.mkdir(exist_ok=True)
        src = staging / name
        src.write_bytes(content.encode() if isinstance(content, str) else content)
        dest = self.folder("Inbox") / name
        os.rename(src, dest)
        return dest

    def runs(self) -> list[tuple]:
        if not self.counter_db.exists():
            return []
        db = sqlite3.connect(self.counter_db, timeout=10)
        try:
            return db.execute("SELECT key, task_id, params FROM runs ORDER BY at").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([PYTHON, "agent_interface.py", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, f"agent_interface.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result


def make_env(tmp: Path, handbook: str = DEFAULT_HANDBOOK, **overrides: str) -> dict[str, str]:
    vault = tmp / "vault"
    vault.mkdir(parents=True, exist_ok=True)
    (vault / "Company_Handbook.md").write_text(handbook, "utf-8")
    skills = tmp / "skills"
    if not skills.exists():
        shutil.copytree(TEST_SKILLS / "test_skill", skills / "test_skill")
        shutil.copytree(ROOT / ".qwen" / "skills" / "vault_skill", skills / "vault_skill")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STATE_", "LLM_", "GMAIL_", "MCP_", "ODOO_"))}
    env.update({
        "VAULT_PATH": str(vault), "SKILLS_DIR": str(skills), "TEST_COUNTER_DB": str(tmp / "counter.db"),
        "RESCAN_SECONDS": "0.3", "DRY_RUN": "true", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
    })
    env.update(overrides)
    return env


@pytest.fixture
def suite(tmp_path: Path):
    s = Suite(tmp_path, make_env(tmp_path))
    yield s
    s.stop_all()
