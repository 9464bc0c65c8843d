"""Memory benchmark (DESIGN §10): the whole suite idle, as the sum of PSS (RSS too), and whether a
process grows with the size of the audit log.

    .venv/bin/python bench/memory.py [--records 100000] [--keep] [--json]

Every app of ecosystem.config.js (so apps added later are measured too) runs as PM2 runs it: the
venv's python with the app's arguments, cwd = the project, on a fresh vault under bench/.runs/,
DRY_RUN, no credentials, every MCP server on a free port. Idle: once each process has a heartbeat
from its own pid in the state store, the Dashboard has been written and every process's PSS has held
still for a few samples. PSS and RSS come from /proc/<pid>/smaps_rollup, a process's children
included; a browser among them (Chromium) is shown apart and left out of the budget total.

Growth: --records audit records, shaped as core/audit.py writes them, are appended to today's
Logs/YYYY-MM-DD.jsonl; PSS is then sampled every 0.2 s (peak kept) until the agent interface has
rewritten Dashboard.md three times, and compared with the idle figure.
Budget: idle total PSS under 400 MB for all eleven processes, browser excluded; no process growing by
more than 20 MB with the log. Exits 1 when either is missed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
PORT_VARS = ("EMAIL_MCP_PORT", "BROWSER_MCP_PORT", "ODOO_MCP_PORT", "TWITTER_MCP_PORT", "META_MCP_PORT")
# Blank means "not configured" for every channel; set explicitly so that a .env (read by the processes,
# never overriding the environment) cannot hand them credentials.
BLANK = ("MCP_AUTH_TOKEN", "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL", "X_BEARER_TOKEN", "X_API_KEY", "X_API_SECRET",
         "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET", "META_ACCESS_TOKEN", "FACEBOOK_PAGE_ID", "INSTAGRAM_ACCOUNT_ID",
         "ODOO_URL", "ODOO_DB", "ODOO_USERNAME", "ODOO_PASSWORD", "ODOO_API_KEY", "STATE_DIR", "BROWSER_PROFILE_DIR")
# Only 127.0.0.1, should anything try an API anyway (port 9: discard, nothing listens).
NOWHERE = "http://127.0.0.1:9"
LOCAL_ONLY = ("GMAIL_API_ENDPOINT", "GMAIL_TOKEN_URI", "X_API_BASE_URL", "META_GRAPH_URL", "WHATSAPP_URL", "LINKEDIN_URL")
# What a process has loaded, from its mappings: the compiled parts of pydantic and aiohttp.
LIBRARIES = {"aiohttp": ("aiohttp/_http_parser", "aiohttp/_http_writer", "aiohttp/_websocket"),
             "pydantic": ("_pydantic_core",)}
BROWSER = re.compile(r"chrom|headless_shell|firefox", re.I)
BUDGET_MB = 400.0
GROWTH_MB = 20.0
START_SECONDS, SETTLE_SECONDS, GROWTH_SECONDS = 30.0, 40.0, 60.0
STABLE_SAMPLES, STABLE_KB = 5, 512  # settled: the last 5 samples (0.5 s apart) within 0.5 MB, per process
REWRITES = 3


class Stopped(Exception):
    """SIGTERM or SIGHUP to this script: unwind, so the processes are stopped."""


def ecosystem_apps(log_dir: Path) -> list[dict]:
    script = ("console.log(JSON.stringify(require('./ecosystem.config.js').apps"
              ".map(a=>({name:a.name,args:a.args,env:a.env||{}}))))")
    # ecosystem.config.js creates its log folder when read: point it into the run's folder.
    out = subprocess.run(["node", "-e", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30,
                         env={**os.environ, "AI_EMPLOYEE_LOG_DIR": str(log_dir)}).stdout
    return json.loads(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def suite_env(tmp: Path, vault: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "STATE_", "LLM_", "GMAIL_", "MCP_", "X_", "META_", "ODOO_"))}
    env.update({k: "" for k in BLANK})
    env.update({k: NOWHERE for k in LOCAL_ONLY})
    env.update({var: str(free_port()) for var in PORT_VARS})
    env.update(VAULT_PATH=str(vault), DRY_RUN="true", MCP_HOST="127.0.0.1", PYTHONPATH=str(ROOT),
               GMAIL_TOKEN_FILE=str(tmp / "no-token.json"), GMAIL_CREDENTIALS_FILE=str(tmp / "no-credentials.json"))
    return env


# -- /proc --------------------------------------------------------------------------------------------
def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], list(kids.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo += kids.get(child, [])
    return out


def rollup_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


def is_browser(pid: int) -> bool:
    try:
        return bool(BROWSER.search(Path(f"/proc/{pid}/comm").read_text()) or BROWSER.search(os.readlink(f"/proc/{pid}/exe")))
    except OSError:
        return False


def sample(pids: dict[str, int]) -> dict[str, dict]:
    """Per app: PSS and RSS (kB) of the process and its children, the browser's share apart."""
    kids = children_map()
    out = {}
    for name, pid in pids.items():
        below = descendants(pid, kids)
        browser = [c for c in below if is_browser(c)]
        own = [pid] + [c for c in below if c not in browser]
        pss, rss = (sum(v) for v in zip(*(rollup_kb(p) for p in own)))
        out[name] = {"pss_kb": pss, "rss_kb": rss, "children": len(below),
                     "browser_pss_kb": sum(rollup_kb(p)[0] for p in browser)}
    return out


def loaded(pid: int) -> dict[str, bool]:
    found = dict.fromkeys(LIBRARIES, False)
    for p in [pid] + descendants(pid, children_map()):
        try:
            maps = Path(f"/proc/{p}/maps").read_text()
        except OSError:
            continue
        for lib, marks in LIBRARIES.items():
            found[lib] = found[lib] or any(m in maps for m in marks)
    return found


# -- the suite ----------------------------------------------------------------------------------------
def heartbeats(db_path: Path) -> dict[int, float]:
    """pid -> latest heartbeat (epoch seconds) in the state store's health table."""
    if not db_path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        try:
            return {pid: at for pid, at in db.execute("SELECT pid, heartbeat FROM health") if pid is not None}
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def log_tail(path: Path) -> str:
    return path.read_text("utf-8", "replace")[-2000:] if path.exists() else ""


def check_alive(procs: dict[str, subprocess.Popen], logs: Path) -> None:
    for name, proc in procs.items():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail(logs / f'{name}.log')}")


def wait_heartbeats(procs: dict[str, subprocess.Popen], started: float, db_path: Path, logs: Path) -> list[str]:
    """Wait until every process has a heartbeat from its own pid, written since it started; returns
    the names that had none by the deadline (measured anyway, and said so)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        check_alive(procs, logs)
        beats = heartbeats(db_path)
        waiting = [n for n, p in procs.items() if beats.get(p.pid, 0.0) < started - 1]
        if not waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.1)


def dashboard_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns  # rewrites are temp file + rename: a new inode each time


def settle(procs: dict[str, subprocess.Popen], pids: dict[str, int], dashboard: Path, logs: Path) -> tuple[dict, bool]:
    """The idle sample, once the Dashboard exists and each PSS stayed within STABLE_KB over the last
    STABLE_SAMPLES samples (or at the deadline: settled=False)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    history: list[dict] = []
    while True:
        check_alive(procs, logs)
        history = (history + [sample(pids)])[-STABLE_SAMPLES:]
        ready = dashboard_stamp(dashboard) is not None and len(history) == STABLE_SAMPLES
        if ready and all(max(h[n]["pss_kb"] for h in history) - min(h[n]["pss_kb"] for h in history) <= STABLE_KB
                         for n in pids):
            return history[-1], True
        if time.monotonic() > deadline:
            return history[-1], False
        time.sleep(0.5)


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    """SIGTERM, up to 15 s (PM2 gives 10), then SIGKILL to what is left of each process group."""
    for proc in procs.values():
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs.values():
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: takes any children along
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


# -- the audit log ------------------------------------------------------------------------------------
def audit_records(count: int, now: dt.datetime) -> list[str]:
    """``count`` lines as AuditLog.record writes them: a day's work of file tasks, emails and approvals,
    five records a task, time stamps spread over the day so far."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    span = max(1.0, (now - midnight).total_seconds() - 1)
    lines = []
    for i in range(count):
        stamp_at = midnight + dt.timedelta(seconds=span * i / max(1, count))
        stamp = stamp_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        n = i // 5
        task_id = f"{stamp_at:%Y%m%dT%H%M%SZ}-{'email' if n % 3 == 0 else 'file_drop'}-{n:010x}"[:48]
        approval = f"apr-{stamp_at:%Y%m%dT%H%M%S}-{n:010x}"
        base = {"timestamp": stamp, "approval_status": "not_required", "approved_by": None, "task_id": task_id,
                "idempotency_key": None}
        kind = i % 5
        if kind == 0:
            entry = {"action_type": "task.created", "actor": "watcher-files", "target": f"Needs_Action/{task_id}.md",
                     "parameters": {"source": "inbox", "source_id": f"invoice-{n:06d}.pdf:{n * 7919}",
                                    "type": "file_drop"}, "result": "ok"}
        elif kind == 1:
            entry = {"action_type": "approval.requested", "actor": "reasoning_loop",
                     "target": "gmail_skill.send_email",
                     "parameters": {"to": f"client{n % 97}@example.com", "subject": f"Re: Invoice #{n:06d}",
                                    "body": "Dear client, please find attached the invoice you asked for. "
                                            "Kind regards, the AI Employee on behalf of the owner."},
                     "approval_status": "pending", "result": {"approval_id": approval}}
        elif kind == 2:
            entry = {"action_type": "loop.run", "actor": "reasoning_loop", "target": f"Email from Client {n % 97}: "
                     f"Invoice request #{n:06d}", "parameters": {},
                     "result": {"rounds": 2, "outcome": "waiting", "ms": round(3 + (n % 50) / 10, 1)}}
        elif kind == 3:
            entry = {"action_type": "gmail_skill.send_email", "actor": "agent_interface",
                     "target": f"gmail_skill.send_email → client{n % 97}@example.com",
                     "parameters": {"to": f"client{n % 97}@example.com", "subject": f"Re: Invoice #{n:06d}",
                                    "body": "Dear client, please find attached the invoice you asked for."},
                     "approval_status": "approved", "approved_by": "owner", "idempotency_key": approval,
                     "result": {"success": True, "data": {"dry_run": True, "message_id": f"dry-{n:08x}"},
                                "error": None, "attempts": 1, "reconciled": False}}
        else:
            entry = {"action_type": "task.finished", "actor": "agent_interface", "target": "Completed",
                     "parameters": {}, "result": {"outcome": "completed", "reason": None}}
        lines.append(json.dumps({**base, **entry}, ensure_ascii=False) + "\n")
    return lines


def append_records(vault: Path, lines: list[str], now: dt.datetime) -> tuple[Path, int]:
    """Appends straight to today's file, whole lines per write() on O_APPEND, as the processes do, so
    no record of theirs lands inside one of ours."""
    path = vault / "Logs" / f"{now:%Y-%m-%d}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        for at in range(0, len(lines), 500):
            data = "".join(lines[at:at + 500]).encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
    finally:
        os.close(fd)
    return path, path.stat().st_size


def watch_growth(procs, pids, dashboard: Path, logs: Path) -> tuple[dict, dict, int, float]:
    """Samples every 0.2 s until Dashboard.md was rewritten REWRITES times (or the deadline); returns
    the last sample, the peak per process, the rewrites seen and the seconds waited."""
    began = time.monotonic()
    deadline = began + GROWTH_SECONDS
    last_stamp, rewrites = dashboard_stamp(dashboard), 0
    peak: dict[str, dict] = {}
    while True:
        check_alive(procs, logs)
        now = sample(pids)
        for name, s in now.items():
            p = peak.setdefault(name, dict(s))
            p["pss_kb"], p["rss_kb"] = max(p["pss_kb"], s["pss_kb"]), max(p["rss_kb"], s["rss_kb"])
        stamp = dashboard_stamp(dashboard)
        if stamp is not None and stamp != last_stamp:
            rewrites, last_stamp = rewrites + 1, stamp
        if rewrites >= REWRITES or time.monotonic() > deadline:
            return now, peak, rewrites, time.monotonic() - began
        time.sleep(0.2)


# -- output -------------------------------------------------------------------------------------------
def mb(kb: float) -> float:
    return kb / 1024


def report(result: dict) -> None:
    idle, libs = result["idle"], result["libraries"]
    print(f"Memory, idle: {len(idle)} processes from ecosystem.config.js, {os.cpu_count()} cores, "
          f"{sys.version.split()[0]}, vault {result['vault']}"
          + ("" if result["settled"] else " (PSS had not settled by the deadline)"))
    if result["no_heartbeat"]:
        print(f"No heartbeat from their own pid within {START_SECONDS:g} s (measured anyway): "
              + ", ".join(result["no_heartbeat"]))
    print("| process | PSS MB | RSS MB | children | aiohttp | pydantic |\n|---|---:|---:|---:|---|---|")
    for name, s in idle.items():
        print(f"| {name} | {mb(s['pss_kb']):.1f} | {mb(s['rss_kb']):.1f} | {s['children']} | "
              f"{'yes' if libs[name]['aiohttp'] else 'no'} | {'yes' if libs[name]['pydantic'] else 'no'} |")
    total_pss, total_rss = (sum(s[k] for s in idle.values()) for k in ("pss_kb", "rss_kb"))
    print(f"| **total** | **{mb(total_pss):.1f}** | **{mb(total_rss):.1f}** | | | |")
    browser = sum(s["browser_pss_kb"] for s in idle.values())
    if browser:
        print(f"Browser processes (not counted above): {mb(browser):.1f} MB PSS")
    print(f"idle total PSS {mb(total_pss):.0f} MB (budget 400 MB for all eleven processes, browser excluded): "
          f"{'ok' if mb(total_pss) < BUDGET_MB else 'OVER BUDGET'} with {len(idle)} of them running")
    growth = result.get("growth")
    if not growth:
        return
    print(f"\nGrowth: {growth['records']:,} audit records appended to {growth['log']} "
          f"({mb(growth['log_bytes'] / 1024):.1f} MB, in {growth['append_seconds']:.1f} s); "
          f"Dashboard.md rewritten {growth['rewrites']} times in {growth['seconds']:.1f} s after"
          + ("" if growth["rewrites"] >= REWRITES else f" (wanted {REWRITES}: deadline reached)"))
    print("| process | idle PSS MB | after PSS MB | peak PSS MB | growth PSS / peak MB | growth RSS MB | |\n"
          "|---|---:|---:|---:|---:|---:|---|")
    for name, row in growth["processes"].items():
        flag = "GROWS" if row["flag"] else ""
        print(f"| {name} | {mb(idle[name]['pss_kb']):.1f} | {mb(row['after']['pss_kb']):.1f} | "
              f"{mb(row['peak']['pss_kb']):.1f} | {row['growth_pss_mb']:+.1f} / {row['peak_growth_pss_mb']:+.1f} | "
              f"{row['growth_rss_mb']:+.1f} | {flag} |")
    flagged = [n for n, r in growth["processes"].items() if r["flag"]]
    print(f"Processes growing by more than {GROWTH_MB:g} MB with the audit log (after or at peak): "
          + (", ".join(flagged) if flagged else "none"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="audit records to append (0: idle only)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (vault and process logs)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of tables")
    args = parser.parse_args()

    def stopped(signum, frame):
        raise Stopped(signal.Signals(signum).name)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stopped)

    runs = ROOT / "bench" / ".runs"
    runs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ai-employee-memory-", dir=runs))
    vault, logs = tmp / "vault", tmp / "logs"
    logs.mkdir()
    python = str(PYTHON if PYTHON.exists() else sys.executable)
    procs: dict[str, subprocess.Popen] = {}
    result: dict = {"vault": str(vault)}
    try:
        apps = ecosystem_apps(logs)
        env = suite_env(tmp, vault)
        started = time.time()
        for app in apps:
            # Its own session: a Ctrl-C reaches only this script, which then stops the suite in order.
            with open(logs / f"{app['name']}.log", "ab") as log:
                procs[app["name"]] = subprocess.Popen(
                    [python, *app["args"]], cwd=ROOT, env={**env, **app["env"]}, start_new_session=True,
                    stdout=log, stderr=subprocess.STDOUT)
        pids = {name: proc.pid for name, proc in procs.items()}
        result["no_heartbeat"] = wait_heartbeats(procs, started, vault / ".state" / "state.db", logs)
        result["idle"], result["settled"] = settle(procs, pids, vault / "Dashboard.md", logs)
        result["libraries"] = {name: loaded(pid) for name, pid in pids.items()}
        if args.records > 0:
            now = dt.datetime.now(dt.timezone.utc)
            lines = audit_records(args.records, now)  # made first: the processes see them land at once
            t0 = time.monotonic()
            log_path, size = append_records(vault, lines, now)
            appended = time.monotonic() - t0
            del lines
            after, peak, rewrites, seconds = watch_growth(procs, pids, vault / "Dashboard.md", logs)
            rows = {}
            for name, idle in result["idle"].items():
                g, gp = mb(after[name]["pss_kb"] - idle["pss_kb"]), mb(peak[name]["pss_kb"] - idle["pss_kb"])
                rows[name] = {"after": after[name], "peak": peak[name], "growth_pss_mb": round(g, 1),
                              "peak_growth_pss_mb": round(gp, 1),
                              "growth_rss_mb": round(mb(after[name]["rss_kb"] - idle["rss_kb"]), 1),
                              "flag": max(g, gp) > GROWTH_MB}
            result["growth"] = {"records": args.records, "log": str(log_path.relative_to(vault)), "log_bytes": size,
                                "append_seconds": round(appended, 3), "rewrites": rewrites,
                                "seconds": round(seconds, 1), "processes": rows}
    except (KeyboardInterrupt, Stopped) as why:
        print(f"memory: interrupted ({str(why) or 'Ctrl-C'}); stopping the processes"
              + (f"; the run's folder is kept: {tmp}" if args.keep else ""), file=sys.stderr)
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # nothing may cut the stopping short
            signal.signal(sig, signal.SIG_IGN)
        stop_all(procs)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    idle_total = mb(sum(s["pss_kb"] for s in result["idle"].values()))
    result["idle_total_pss_mb"] = round(idle_total, 1)
    result["idle_total_rss_mb"] = round(mb(sum(s["rss_kb"] for s in result["idle"].values())), 1)
    result["budget_mb"] = BUDGET_MB
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)
    if args.keep:
        print(f"Kept the run's folder (vault, process logs): {tmp}", file=sys.stderr if args.json else sys.stdout)
    flagged = any(r["flag"] for r in result.get("growth", {}).get("processes", {}).values())
    return 0 if idle_total < BUDGET_MB and not flagged else 1


if __name__ == "__main__":
    sys.exit(main())
