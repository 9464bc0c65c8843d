#!/usr/bin/env bash
# Starts the whole suite under PM2 (ecosystem.config.js) and waits until every process is up.
# Settings come from the environment and .env (see .env.example); nothing is required.
# Running it again restarts the suite. Stop it with ./scripts/stop.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
./scripts/setup.sh

PM2=./node_modules/.bin/pm2
PY=./.venv/bin/python
READY_SECONDS="${READY_SECONDS:-20}"

"$PM2" start ecosystem.config.js >/dev/null
echo "start: launched the ecosystem; waiting up to ${READY_SECONDS}s for every process ..."

# Ready = PM2 says online and, for a process that keeps a heartbeat in the state store, the
# heartbeat is fresh and comes from the very pid PM2 started (not from a previous run).
set +e
"$PY" - "$READY_SECONDS" <<'EOF'
import json, sqlite3, subprocess, sys, time

from core.config import Settings

deadline = time.monotonic() + float(sys.argv[1])
names = json.loads(subprocess.check_output(
    ["node", "-e", "console.log(JSON.stringify(require('./ecosystem.config.js').apps.map(a => a.name)))"]))
db_path = Settings.from_env().state_db


def heartbeats() -> dict:
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        try:
            return {p: (pid, at) for p, pid, at in db.execute("SELECT process, pid, heartbeat FROM health")}
        finally:
            db.close()
    except sqlite3.Error:
        return {}


while True:
    apps = {a["name"]: a for a in json.loads(subprocess.check_output(["./node_modules/.bin/pm2", "jlist"]))}
    beats = heartbeats()
    waiting = []
    for name in names:
        app = apps.get(name)
        if app is None or app["pm2_env"]["status"] != "online":
            waiting.append(f"{name} ({app['pm2_env']['status'] if app else 'missing'})")
        elif name in beats and (beats[name][0] != app["pid"] or time.time() - beats[name][1] > 10):
            waiting.append(f"{name} (no heartbeat yet)")
    if not waiting:
        sys.exit(0)
    if time.monotonic() > deadline:
        print("start: not ready: " + ", ".join(waiting), file=sys.stderr)
        sys.exit(1)
    time.sleep(0.25)
EOF
ready=$?
set -e

"$PM2" status
VAULT="$("$PY" -c 'from core.config import Settings; print(Settings.from_env().vault_path)')"
if [ "$ready" != 0 ]; then
  echo "start: some processes are not up; see why with: npx pm2 logs <name> (log files are in logs/)" >&2
  exit 1
fi
cat <<EOF

The AI Employee is running. Vault: $VAULT
Next steps (after: source .venv/bin/activate):
  - drop a file into $VAULT/Inbox/: it becomes a task, a plan and an approval request
  - python agent_interface.py status      what every process is doing
  - python agent_interface.py pending     what waits for you; then approve|reject <id>, or move the
                                          file from Pending_Approval/ to Approved/ or Rejected/
  - npx pm2 logs                          live logs (files in logs/)
  - ./scripts/stop.sh                     stop everything
EOF
