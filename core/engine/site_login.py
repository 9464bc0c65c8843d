"""The owner's side of logging in to a browser site (``agent_interface.py login whatsapp``) and of the
selectors self-test (``agent_interface.py check whatsapp``). The Browser MCP server owns Chromium and
the profiles, so both go through it: it opens the site's profile in a visible window, the owner scans
the QR code or signs in there, and once the page shows the site logged in the window closes and the
site goes on headless, the login kept in its profile for every restart."""
from __future__ import annotations

import time
from typing import Callable

from core.engine.mcp_client import McpClient
from core.errors import AIEmployeeError, AuthError, UpstreamError

HOW = {"whatsapp": "scan the QR code with your phone (WhatsApp → Settings → Linked devices → Link a device)",
       "linkedin": "sign in (and answer any security check LinkedIn shows)"}
Say = Callable[[str], None]


def login(client: McpClient, site: str, *, wait_s: float = 300.0, poll_s: float = 2.0, say: Say = print,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    opened = client.post("/browser/login", {"site": site})
    say(f"A {site} window is open on this machine: {HOW[site]}. Waiting up to {wait_s / 60:.0f} min ...")
    if opened.get("note"):
        say(f"  ({opened['note']})")
    deadline, state = clock() + wait_s, opened.get("state", "unknown")
    try:
        while clock() < deadline:
            try:
                report = client.get("/browser/check", {"site": site})
            except (AuthError, UpstreamError) as err:  # still the login page, a checkpoint, still loading
                state = str(err).split(":", 1)[0]
            else:
                if report["state"] == "ok":
                    state = "ok"
                    break
                state = report["state"]
            sleep(poll_s)
    finally:
        done = client.post("/browser/login/done", {"site": site})
    if state != "ok":
        say(f"Not logged in yet ({state}). Run the command again when you are ready.")
        return 1
    missing = [name for name, said in (done.get("elements") or {}).items() if said == "missing"]
    say(f"{site}: logged in; the login is kept in its profile." + (
        f" But these selectors do not match: {', '.join(missing)} (see `agent_interface.py check {site}`)."
        if missing else ""))
    return 0


def check(client: McpClient, site: str, *, say: Say = print) -> int:
    try:
        report = client.get("/browser/check", {"site": site})
    except AIEmployeeError as err:
        say(f"{site}: {err}")
        return 1
    width = max(len(name) for name in report["elements"]) if report["elements"] else 0
    for name, said in sorted(report["elements"].items()):
        say(f"  {name.ljust(width)}  {said}")
    if report["missing"]:
        say(f"{site}: {len(report['missing'])} selector(s) no longer match: {', '.join(report['missing'])}; "
            "update them in BROWSER_SELECTORS_FILE (no restart needed)")
        return 1
    say(f"{site}: {report['state']}; every selector matches (not_seen: absent right now, which is normal)")
    return 0
