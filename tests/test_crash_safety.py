"""Crash safety (DESIGN §8): kill -9 every process at random moments while a few hundred tasks flow;
afterwards every task is in exactly one terminal folder and every action ran exactly once."""
from __future__ import annotations

import collections
import random
import shutil
import threading
import time

from tests.conftest import md_files, wait_until

TASKS = 240
HANDBOOK = """```yaml
policy:
  auto_approve:
    - {rule: auto, skill: test_skill, action: record}
  rate_limits_per_hour: {email: 100000}
planning:
  - rule: auto
    when: {type: file_drop, keywords: [auto]}
    steps:
      - {skill: test_skill, action: record, title: "Record {file_name}", params: {note: "{file_name}"}}
  - rule: gated
    when: {type: file_drop}
    steps:
      - {skill: test_skill, action: record_gated, title: "Record {file_name}", params: {note: "{file_name}", text: "t"}}
```
"""


def test_kill_9_at_random_points_loses_nothing_and_repeats_nothing(suite):
    (suite.vault / "Company_Handbook.md").write_text(HANDBOOK)
    suite.env["TEST_SKILL_DELAY"] = "0.005"
    suite.start_all()
    rng = random.Random(20261124)
    stop = threading.Event()
    kills = collections.Counter()
    lock = threading.Lock()

    def owner() -> None:
        """Approves everything that waits, like an owner dragging files."""
        while not stop.is_set():
            for path in md_files(suite.folder("Pending_Approval")):
                try:
                    shutil.move(path, suite.folder("Approved") / path.name)
                except FileNotFoundError:
                    pass
            stop.wait(0.05)

    def killer() -> None:
        while not stop.wait(rng.uniform(0.1, 0.6)):
            name = rng.choice(["watcher", "loop", "agent"])
            with lock:
                suite.kill9(name)
                kills[name] += 1
                suite.start(name, wait=False)

    threads = [threading.Thread(target=owner, daemon=True), threading.Thread(target=killer, daemon=True)]
    for t in threads:
        t.start()
    try:
        for i in range(TASKS):
            suite.drop(f"{'auto' if i % 2 else 'gated'}-{i:04d}.txt", f"task {i}")
            if i % 20 == 19:
                time.sleep(0.05)  # pacing: drops arrive in bursts while processes die
        # Keep killing for a while after the last drop, then let the suite finish.
        wait_until(lambda: sum(kills.values()) >= 25, timeout=60, message="enough kills")
    finally:
        killer_thread = threads[1]
        stop.set()
        killer_thread.join()
    stop.clear()
    owner_thread = threading.Thread(target=owner, daemon=True)
    owner_thread.start()
    try:
        suite.assert_alive()
        wait_until(lambda: len(md_files(suite.folder("Completed"))) >= 2 * TASKS - TASKS // 2,
                   timeout=240, interval=0.2, message="every task and approval in Completed/")
        wait_until(lambda: not md_files(suite.folder("Needs_Action")) and not md_files(suite.folder("In_Progress"))
                   and not list(suite.folder("Inbox").iterdir()), timeout=60, message="nothing left in flight")
    finally:
        stop.set()
        owner_thread.join()

    locations = collections.defaultdict(list)
    for folder in ("Needs_Action", "In_Progress", "Completed", "Failed", "Quarantine"):
        for path in md_files(suite.folder(folder)):
            if "-file_drop-" in path.name and not path.name.startswith(("RECORD", "PLAN")):
                locations[path.stem].append(folder)
    assert len(locations) == TASKS, f"{len(locations)} tasks for {TASKS} drops"
    assert all(places == ["Completed"] for places in locations.values()), \
        {k: v for k, v in locations.items() if v != ["Completed"]}
    assert md_files(suite.folder("Failed")) == [] and md_files(suite.folder("Quarantine")) == []

    runs = suite.runs()
    per_key = collections.Counter(key for key, _, _ in runs)
    assert [k for k, n in per_key.items() if n > 1] == [], "an action ran twice"
    notes = sorted(__import__("json").loads(p)["note"] for _, _, p in runs)
    assert notes == sorted(f"{'auto' if i % 2 else 'gated'}-{i:04d}.txt" for i in range(TASKS))
    assert sum(kills.values()) >= 25 and all(kills[n] > 0 for n in ("watcher", "loop", "agent")), kills
