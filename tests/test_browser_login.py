"""Logging in once, as the owner does it: `agent_interface.py login whatsapp` asks the running browser
server (a real process) to open WhatsApp Web's profile in a visible window (on an Xvfb display here),
waits while the owner scans the QR code, then the site goes on headless and logged in; `check` reports
the selectors. The page shaped like WhatsApp Web moves on by itself once the phone has scanned, as the
real one does."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import PYTHON, ROOT, Suite, free_port, make_env, wait_until
from tests.fakes.fake_sites import FakeSites

pytestmark = pytest.mark.timeout(150)  # Chromium and Xvfb: ./scripts/test.sh installs both


@pytest.fixture
def display():
    for number in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    proc = subprocess.Popen(["Xvfb", f":{number}", "-nolisten", "tcp", "-screen", "0", "1280x900x24"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: Path(f"/tmp/.X11-unix/X{number}").exists() or proc.poll() is not None, timeout=20,
                   message="Xvfb to start")
        assert proc.poll() is None, "Xvfb exited"
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_login_opens_a_visible_window_waits_for_the_scan_and_the_site_goes_on_headless(tmp_path, display):
    with FakeSites() as sites:
        sites.whatsapp_variant = "logged_out"
        port = free_port()
        env = make_env(tmp_path, BROWSER_MCP_PORT=str(port), BROWSER_ALLOWED_HOSTS="127.0.0.1",
                       BROWSER_ONLY_ALLOWED_HOSTS="true", WHATSAPP_URL=f"{sites.url}/wa", LINKEDIN_URL=f"{sites.url}/li",
                       BROWSER_EXECUTABLE="/usr/bin/chromium", DISPLAY=display)
        suite = Suite(tmp_path, env)
        try:
            suite.start("browser")
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _health(url), timeout=30, message="the browser server")
            login = subprocess.Popen([PYTHON, "agent_interface.py", "login", "whatsapp", "--wait", "90"], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            first = login.stdout.readline()
            assert "window is open" in first and "QR code" in first, first
            assert _chromium_headful(suite.procs["browser"].pid), "no visible Chromium window was launched"
            sites.whatsapp_variant = "en"  # the owner scans the code with their phone
            out, _ = login.communicate(timeout=90)
            assert login.returncode == 0, first + out
            assert "whatsapp: logged in" in out
            unread = requests.get(f"{url}/whatsapp/unread", timeout=60).json()
            assert unread["success"] and unread["data"]["chats"]
            assert not _chromium_headful(suite.procs["browser"].pid)  # headless again, the login kept
            check = subprocess.run([PYTHON, "agent_interface.py", "check", "whatsapp"], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=90)
            assert check.returncode == 0 and "every selector matches" in check.stdout, check.stdout + check.stderr
        finally:
            suite.stop_all()


def _health(url: str) -> dict | None:
    try:
        return requests.get(f"{url}/health", timeout=2).json()
    except requests.ConnectionError:
        return None


def _chromium_headful(server_pid: int) -> bool:
    """A Chromium under the server process launched without --headless (a window on the display)."""
    for pid in _descendants(server_pid):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and b"chrom" in args[0] and not any(a.startswith(b"--type=") for a in args):
            return not any(a.startswith(b"--headless") for a in args)
    return False


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(stat[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
