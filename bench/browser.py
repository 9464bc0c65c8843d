"""Browser benchmark (issue 10): how long the Browser MCP server takes to start Chromium, read a page and
make a post, and how much memory its Chromium process tree holds, at idle and after many page reads.

    .venv/bin/python bench/browser.py [--runs 5] [--reads 100] [--budget-mb 30]

Everything goes through the real product: the Browser MCP server (mcp_servers/browser_server.py,
``build_app(settings, engine=...)``) served in-process by tests.demo_service.ServerThread, its engine
(mcp_servers/browser/engine.py) driving Debian's /usr/bin/chromium headless, against the local fake sites
(tests/fakes/fake_sites.py: pages under /pages/, WhatsApp Web under /wa/, LinkedIn under /li/). The engine
runs with only_allowed=True, 127.0.0.1 its one allowed host, and the loopback-only resolver: no request, not
even a DNS query, leaves the machine. DRY_RUN is false; each write is granted as the owner grants it
(Approvals.request, the file moved to Approved, accept) before its clock starts. Requests are plain HTTP to
the server's REST routes.

Figures, each the median and best of --runs (after one warm-up where it makes sense):

1. Browser start: a fresh server, engine and temporary profile each run; from building the server (its
   startup brings up the Playwright driver) to the first POST /browse-web answered (Chromium is launched
   lazily on that first use). The file cache is warm (one warm-up run): process-cold, not disk-cold.
2. A page read, warm: POST /browse-web of a local page, and GET /scrape-content of another.
3. Round trips, warm (the first call, which opens the site's own Chromium, shown apart): GET
   /whatsapp/unread, POST /whatsapp/send (granted) and POST /social-media-post to LinkedIn (granted), from
   request to answer.
4. Memory: RSS and PSS (/proc/<pid>/smaps_rollup) of every Chromium process below this Python process,
   grouped by browser (the cookie-less one for arbitrary pages, WhatsApp's and LinkedIn's profiles), the
   Playwright driver (node) apart: at idle once all three are up, after --reads page reads and after
   another --reads. Each sample is taken once the total has held still (or after a bounded wait).

Budget (issue 10): the Chromium tree must not grow without bound: from the first --reads reads to the
second, it grows by less than --budget-mb MB (PSS when readable, else RSS), and so does the browser that
does the reads on its own (the sites' idle browsers shrinking must not hide it). Chromium must not run
before its first use, nor outlive its server. Exits 1 when over budget or when any call fails.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from core.approval.approvals import Approvals  # noqa: E402
from core.config import Settings  # noqa: E402
from core.state import StateStore  # noqa: E402
from core.vault import Vault  # noqa: E402
from mcp_servers.browser.config import DEFAULT_SELECTORS, BrowserConfig  # noqa: E402
from mcp_servers.browser.engine import BrowserEngine  # noqa: E402
from mcp_servers.browser_server import build_app  # noqa: E402
from tests.demo_service import ServerThread  # noqa: E402
from tests.fakes.fake_sites import FakeSites, loopback_resolver  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
BROWSER = re.compile(r"chrom", re.I)
DRIVER = re.compile(r"node|playwright", re.I)
TIMEOUT_S = 60
SETTLE_INTERVAL_S, SETTLE_SAMPLES, SETTLE_KB, SETTLE_MAX_S = 0.5, 4, 1024, 12.0


class Failed(Exception):
    """A call answered something other than a success: the figures would mean nothing."""


# -- /proc ----------------------------------------------------------------------------------------------
def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int) -> dict[int, int]:
    """Every process below ``pid``: child -> parent."""
    kids, out, todo = children_map(), {}, [pid]
    while todo:
        parent = todo.pop()
        for child in kids.get(parent, []):
            out[child] = parent
            todo.append(child)
    return out


def name_of(pid: int) -> str:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
    try:
        return f"{comm} {os.readlink(f'/proc/{pid}/exe')}"
    except OSError:
        return comm


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def memory_kb(pid: int) -> tuple[int, int | None]:
    """(RSS, PSS) in kB; PSS None when smaps_rollup is not readable; (0, 0) once the process is gone."""
    rss = pss = None
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    if rss is None:  # no smaps_rollup: RSS from status, PSS unknown
        try:
            rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            return 0, 0
    return rss, pss


def browser_label(root: int, profiles: Path | None) -> str:
    for arg in cmdline(root):
        if arg.startswith("--user-data-dir="):
            path = Path(arg.split("=", 1)[1])
            if profiles is not None and path.parent == profiles:
                return path.name  # whatsapp, linkedin: the site's own profile
    return "web"  # the cookie-less browser for arbitrary pages (a temporary profile)


def chromium_pids() -> list[int]:
    return [p for p in descendants(os.getpid()) if BROWSER.search(name_of(p))]


def snapshot(profiles: Path | None) -> dict[str, Any]:
    """Chromium below this process, per browser: processes, RSS and PSS (kB); the Playwright driver apart."""
    tree = descendants(os.getpid())
    chromium = {p for p in tree if BROWSER.search(name_of(p))}
    groups: dict[str, dict[str, Any]] = {}
    for pid in chromium:
        root = pid
        while tree.get(root) in chromium:
            root = tree[root]
        rss, pss = memory_kb(pid)
        g = groups.setdefault(browser_label(root, profiles), {"procs": 0, "rss": 0, "pss": 0, "pss_known": True})
        g["procs"], g["rss"] = g["procs"] + 1, g["rss"] + rss
        g["pss"] += pss or 0
        g["pss_known"] = g["pss_known"] and pss is not None
    driver = [p for p in tree if p not in chromium and DRIVER.search(name_of(p))]
    d_rss = sum(memory_kb(p)[0] for p in driver)
    d_pss = [memory_kb(p)[1] for p in driver]
    return {"groups": groups, "procs": sum(g["procs"] for g in groups.values()),
            "rss": sum(g["rss"] for g in groups.values()), "pss": sum(g["pss"] for g in groups.values()),
            "pss_known": bool(groups) and all(g["pss_known"] for g in groups.values()),
            "driver": {"procs": len(driver), "rss": d_rss,
                       "pss": sum(x or 0 for x in d_pss) if all(x is not None for x in d_pss) else None}}


def settled(profiles: Path) -> dict[str, Any]:
    """A snapshot once the Chromium total has held within SETTLE_KB for SETTLE_SAMPLES samples."""
    deadline, recent = time.monotonic() + SETTLE_MAX_S, []
    while True:
        snap = snapshot(profiles)
        key = snap["pss"] if snap["pss_known"] else snap["rss"]
        recent = (recent + [(key, snap["procs"])])[-SETTLE_SAMPLES:]
        still = (len(recent) == SETTLE_SAMPLES and max(k for k, _ in recent) - min(k for k, _ in recent) <= SETTLE_KB
                 and len({n for _, n in recent}) == 1)
        if still or time.monotonic() > deadline:
            snap["settled"] = still
            return snap
        time.sleep(SETTLE_INTERVAL_S)


# -- the server -----------------------------------------------------------------------------------------
def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only, whatever the environment's proxies say
    return s


class Rig:
    """One Browser MCP server on its own temporary vault, state and profiles, against ``sites``."""

    def __init__(self, sites: FakeSites, place: Path) -> None:
        self.sites, self.place = sites, place
        selectors = place / "selectors.yaml"
        shutil.copyfile(DEFAULT_SELECTORS, selectors)
        env = {"VAULT_PATH": str(place / "vault"), "DRY_RUN": "false", "BROWSER_MCP_PORT": "0"}
        self.settings = Settings.from_env(env)
        self.profiles = (place / "profiles").absolute()
        self.config = BrowserConfig(profile_dir=self.profiles, executable=CHROMIUM, allowed_hosts=("127.0.0.1",),
                                    only_allowed=True, selectors_file=selectors, whatsapp_url=f"{sites.url}/wa",
                                    linkedin_url=f"{sites.url}/li", nav_timeout_s=20, element_timeout_s=5)
        self.server: ServerThread | None = None
        self.http = session()
        self._grants = itertools.count(1)

    def __enter__(self) -> Rig:
        engine = BrowserEngine(self.config, resolver=loopback_resolver)
        self.server = ServerThread(build_app(self.settings, engine=engine)).__enter__()
        self.vault, self.state = Vault(self.settings.vault_path), StateStore(self.settings.state_db)
        self.approvals = Approvals(self.vault, self.state)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        if self.server is not None:
            self.server.__exit__(*exc)

    def call(self, method: str, path: str, **kw: Any) -> dict:
        answer = self.http.request(method, f"{self.server.url}{path}", timeout=TIMEOUT_S, **kw)
        body = answer.json()
        if answer.status_code != 200 or not body.get("success"):
            raise Failed(f"{method} {path}: {answer.status_code} {json.dumps(body)[:400]}")
        return body["data"]

    def grant(self, skill: str, action: str, params: dict) -> str:
        row = self.approvals.request(task_id=f"bench-browser-{next(self._grants)}", step_no=1, skill=skill,
                                     action=action, params=params, text_param="text" if "text" in params else None,
                                     risk="medium", reason="benchmark", subject=action)
        approved = self.vault.move(self.vault.root / "Pending_Approval" / row["file_name"],
                                   self.vault.folder("Approved"))
        return self.approvals.accept(approved).id

    def browse(self, page: str = "article.html") -> dict:
        data = self.call("POST", "/browse-web", json={"url": f"{self.sites.url}/pages/{page}"})
        if data["status"] != 200 or not data["text"]:
            raise Failed(f"/browse-web {page}: {json.dumps(data)[:300]}")
        return data

    def scrape(self) -> dict:
        data = self.call("GET", "/scrape-content", params={"url": f"{self.sites.url}/pages/list.html",
                                                            "selectors": json.dumps({"h": "h1", "items": "li"})})
        if not data["fields"]["h"]:
            raise Failed(f"/scrape-content: {json.dumps(data)[:300]}")
        return data


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def wait_gone(timeout_s: float = 15.0) -> int:
    """Wait for the Chromium of a stopped server to exit; the count still there."""
    deadline = time.monotonic() + timeout_s
    while (left := len(chromium_pids())) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


# -- the figures ----------------------------------------------------------------------------------------
def cold_start(sites: FakeSites, runs: int) -> list[dict[str, float]]:
    """Per run (after one warm-up): server up (Playwright driver) and the first read (Chromium's launch)."""
    out = []
    for run in range(runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-browser-start-") as place:
            rig = Rig(sites, Path(place))
            started = time.perf_counter()
            with rig:
                up = time.perf_counter()
                lazy = len(chromium_pids())  # nothing launched before the first use
                rig.browse()
                done = time.perf_counter()
        left = wait_gone()
        if run:
            out.append({"up": up - started, "first": done - up, "total": done - started,
                        "chromium_before": lazy, "left": left})
    return out


def round_trips(rig: Rig, runs: int) -> dict[str, dict[str, Any]]:
    sites, rows = rig.sites, {}

    def measure(name: str, make: Callable[[int], Callable[[], object]]) -> None:
        first = timed(make(0))  # the warm-up: for the sites, it opens their Chromium
        rows[name] = {"first": first, "times": [timed(make(i)) for i in range(1, runs + 1)]}

    measure("POST /browse-web (article.html)", lambda i: rig.browse)
    measure("GET /scrape-content (list.html)", lambda i: rig.scrape)
    measure("GET /whatsapp/unread", lambda i: lambda: rig.call("GET", "/whatsapp/unread"))

    def send(i: int) -> Callable[[], object]:
        params = {"chat": "Jane Doe", "text": f"Benchmark reply {i}, Jane."}
        grant = rig.grant("whatsapp_skill", "send_whatsapp_message", params)  # before the clock
        return lambda: rig.call("POST", "/whatsapp/send", json={**params, "grant_id": grant})

    def post(i: int) -> Callable[[], object]:
        params = {"platform": "linkedin", "text": f"Benchmark post {i}: we are hiring a junior bookkeeper."}
        grant = rig.grant("linkedin_skill", "social_media_post", params)
        def go() -> None:
            data = rig.call("POST", "/social-media-post", json={**params, "grant_id": grant})
            if not str(data.get("urn") or "").startswith("urn:li:activity:"):
                raise Failed(f"/social-media-post: no urn in {json.dumps(data)[:300]}")
        return go

    sent_before, posted_before = len(sites.wa_sent), len(sites.li_posted)
    measure("POST /whatsapp/send (granted)", send)
    measure("POST /social-media-post, LinkedIn (granted)", post)
    if len(sites.wa_sent) - sent_before != runs + 1 or len(sites.li_posted) - posted_before != runs + 1:
        raise Failed(f"the fake sites saw {len(sites.wa_sent) - sent_before} WhatsApp sends and "
                     f"{len(sites.li_posted) - posted_before} LinkedIn posts, expected {runs + 1} each")
    return rows


def reads(rig: Rig, count: int) -> list[float]:
    pages = ("article.html", "list.html", "form.html")
    return [timed(lambda i=i: rig.browse(pages[i % len(pages)])) for i in range(count)]


# -- the report -----------------------------------------------------------------------------------------
def chromium_version() -> str:
    try:
        out = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def mb(kb: float | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:.1f}"


def med_best(times: list[float]) -> str:
    return f"{statistics.median(times):.3f} | {min(times):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each timing; median and best shown")
    parser.add_argument("--reads", type=int, default=100, help="page reads between the memory samples")
    parser.add_argument("--budget-mb", type=float, default=30.0,
                        help="allowed growth of the Chromium tree from the first --reads reads to the second")
    args = parser.parse_args()
    if args.runs < 1 or args.reads < 1:
        parser.error("--runs and --reads must be at least 1")
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} is missing: install Chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    if chromium_pids():
        print("Chromium is already running below this process; nothing measured", file=sys.stderr)
        return 1

    began = time.perf_counter()
    print(f"Browser MCP server: {os.cpu_count()} cores, Python {sys.version.split()[0]}, {chromium_version()} "
          f"(headless); local fake sites on loopback only; median and best of {args.runs}")
    try:
        with FakeSites() as sites, tempfile.TemporaryDirectory(prefix="bench-browser-") as place:
            starts = cold_start(sites, args.runs)
            with Rig(sites, Path(place)) as rig:
                rig.browse()  # the long-lived server's own Chromium start
                trips = round_trips(rig, args.runs)
                idle = settled(rig.profiles)
                first_reads = reads(rig, args.reads)
                after_first = settled(rig.profiles)
                second_reads = reads(rig, args.reads)
                after_second = settled(rig.profiles)
            left = wait_gone()
    except Failed as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1

    print("\nBrowser start (a fresh server, engine and profile each run; Chromium launched on first use)\n")
    print("| step | median s | best s |\n|---|---:|---:|")
    for key, label in (("up", "server up (Playwright driver started)"),
                       ("first", "first POST /browse-web (Chromium launch + page)"),
                       ("total", "server start to first page read answered")):
        print(f"| {label} | {med_best([s[key] for s in starts])} |")
    lazy = max(s["chromium_before"] for s in starts)
    print(f"\nChromium processes before the first read: {lazy} (lazy launch: 0 expected)")

    print("\nRound trips, warm (the first call, which opens the browser or the site's Chromium, apart)\n")
    print("| call | first s | median s | best s |\n|---|---:|---:|---:|")
    for name, row in trips.items():
        print(f"| {name} | {row['first']:.3f} | {med_best(row['times'])} |")
    for label, times in ((f"POST /browse-web, reads 1-{args.reads}", first_reads),
                         (f"POST /browse-web, reads {args.reads + 1}-{2 * args.reads}", second_reads)):
        print(f"| {label} | – | {statistics.median(times):.3f} | {min(times):.3f} |")

    use_pss = all(s["pss_known"] for s in (idle, after_first, after_second))
    basis = "PSS" if use_pss else "RSS"
    labels = [g for g in ("web", "whatsapp", "linkedin") if any(g in s["groups"] for s in (idle, after_first))]
    labels += sorted({g for s in (idle, after_first, after_second) for g in s["groups"]} - set(labels))
    print(f"\nMemory of the Chromium process tree, MB (by browser: {basis}, its processes in parentheses); "
          f"the Playwright driver (node) apart\n")
    print("| when | processes | RSS | PSS | " + " | ".join(labels) + " | driver RSS | settled |\n"
          "|---|---:|---:|---:|" + "---:|" * len(labels) + "---:|---|")
    for when, s in (("idle, after start and the calls above", idle), (f"after {args.reads} page reads", after_first),
                    (f"after {2 * args.reads} page reads", after_second)):
        by = " | ".join(f"{mb(g['pss'] if use_pss else g['rss'])} ({g['procs']})" if (g := s["groups"].get(name))
                        else "–" for name in labels)
        print(f"| {when} | {s['procs']} | {mb(s['rss'])} | {mb(s['pss'] if s['pss_known'] else None)} | {by} | "
              f"{mb(s['driver']['rss'])} | {'yes' if s['settled'] else 'no'} |")
    key = "pss" if use_pss else "rss"
    growth_first = (after_first[key] - idle[key]) / 1024
    growth = (after_second[key] - after_first[key]) / 1024
    rss_growth = (after_second["rss"] - after_first["rss"]) / 1024
    web_growth = (after_second["groups"].get("web", {}).get(key, 0)
                  - after_first["groups"].get("web", {}).get(key, 0)) / 1024
    driver_growth = (after_second["driver"]["rss"] - after_first["driver"]["rss"]) / 1024
    print(f"\nGrowth ({basis}): idle to {args.reads} reads {growth_first:+.1f} MB; {args.reads} to "
          f"{2 * args.reads} reads {growth:+.1f} MB (RSS {rss_growth:+.1f} MB), of it the browser that reads "
          f"{web_growth:+.1f} MB; budget under {args.budget_mb:.0f} MB for both. Playwright driver RSS over the "
          f"second {args.reads}: {driver_growth:+.1f} MB (not in the budget)")
    if left:
        print(f"Chromium processes left after the servers stopped: {left}")

    problems = [why for why, bad in (
        (f"the tree grew {growth:.1f} MB over the second {args.reads} reads", growth >= args.budget_mb),
        (f"the browser that reads grew {web_growth:.1f} MB over the second {args.reads} reads",
         web_growth >= args.budget_mb),
        ("Chromium ran before its first use", lazy != 0),
        (f"{left} Chromium processes outlived their server", bool(left))) if bad]
    ok = not problems
    start_med = statistics.median(s["total"] for s in starts)
    read_med = statistics.median(trips["POST /browse-web (article.html)"]["times"])
    print(f"\nVerdict: {'PASS' if ok else 'FAIL'}: start {start_med:.2f} s, a page read {read_med:.3f} s, "
          f"Chromium {mb(after_second[key])} MB {basis} after {2 * args.reads} reads, growth {growth:+.1f} MB over "
          f"the last {args.reads} (budget < {args.budget_mb:.0f} MB)" + "".join(f"; {p}" for p in problems)
          + f"; {time.perf_counter() - began:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
