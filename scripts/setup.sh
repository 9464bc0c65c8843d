#!/usr/bin/env bash
# Installs what the suite needs, and only what is missing; safe to run again and again.
#   ./scripts/setup.sh          Python venv (.venv) with requirements.txt, and the local pm2 (node_modules)
#   ./scripts/setup.sh --dev    also requirements-dev.txt, Debian's chromium and xvfb (browser tests) and wrk (bench/)
# No .env is created: every setting has a safe default (see .env.example).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# --- Python: .venv -----------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
VENV_PY="$ROOT/.venv/bin/python"
if ! "$VENV_PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or newer (or set PYTHON=/path/to/python3.11)"
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
    || die "$("$PYTHON" --version 2>&1) is too old: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
  # --clear: a .venv left by another Python (moved or upgraded) cannot be repaired in place
  "$PYTHON" -m venv --clear "$ROOT/.venv" || die "could not create .venv (Debian's python3 needs: apt-get install python3-venv)"
  say "created .venv with $("$VENV_PY" --version)"
fi

# A hash of the requirement files is kept in the venv, so re-runs skip pip when nothing changed.
# The dev set includes the runtime set, so installing it satisfies both.
req_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }
RUNTIME_STAMP="$ROOT/.venv/.requirements.sha256"
DEV_STAMP="$ROOT/.venv/.requirements-dev.sha256"
if [ "$DEV" = 1 ]; then REQ=requirements-dev.txt STAMP="$DEV_STAMP"; WANT="$(req_hash requirements.txt requirements-dev.txt)"
else REQ=requirements.txt STAMP="$RUNTIME_STAMP"; WANT="$(req_hash requirements.txt)"; fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  say "installing Python packages from $REQ ..."
  "$VENV_PY" -m pip install --quiet --quiet --disable-pip-version-check -r "$REQ"  # -qq: errors only
  echo "$WANT" > "$STAMP"
  [ "$DEV" = 1 ] && req_hash requirements.txt > "$RUNTIME_STAMP"
  say "Python packages installed ($("$VENV_PY" --version))"
else
  say "Python packages up to date (.venv, $("$VENV_PY" --version))"
fi

# --- Node: the project's own pm2 ---------------------------------------------------------------
command -v npm >/dev/null || die "npm not found: install Node.js 18 or newer (Debian: apt-get install nodejs npm)"
LOCK_STAMP="$ROOT/node_modules/.ai-employee-lock"
if [ -f package-lock.json ]; then
  WANT_LOCK="$(sha256sum package-lock.json | cut -d' ' -f1)"
else
  WANT_LOCK="no-lock"
fi
if [ ! -x node_modules/.bin/pm2 ] || [ "$(cat "$LOCK_STAMP" 2>/dev/null)" != "$WANT_LOCK" ]; then
  say "installing pm2 (npm) ..."
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
  else
    npm install --no-audit --no-fund --loglevel=error >/dev/null
  fi
  echo "$WANT_LOCK" > "$LOCK_STAMP"
fi
say "pm2 $(node -p 'require("./node_modules/pm2/package.json").version') ready (node_modules/.bin/pm2)"

# --- Tests and benchmarks: Debian's chromium, xvfb and wrk -------------------------------------
if [ "$DEV" = 1 ]; then
  MISSING=()
  [ -x /usr/bin/chromium ] || MISSING+=(chromium)
  command -v Xvfb >/dev/null || MISSING+=(xvfb)   # a display for the visible login window's test
  command -v wrk >/dev/null || MISSING+=(wrk)
  if [ "${#MISSING[@]}" -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || die "need root (or sudo) to apt-get install ${MISSING[*]}"
      SUDO="sudo"
    fi
    say "installing ${MISSING[*]} (apt-get) ..."
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    if ! $SUDO apt-get install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null; then
      # wrk only serves the benchmarks: without it the tests still run
      $SUDO apt-get install -y -qq --no-install-recommends chromium xvfb >/dev/null || die "apt-get install chromium xvfb failed"
      say "warning: wrk could not be installed; bench/ needs it"
    fi
  fi
  [ -x /usr/bin/chromium ] || die "/usr/bin/chromium is still missing after apt-get"
  command -v Xvfb >/dev/null || die "Xvfb is still missing after apt-get (the login window's test needs it)"
  say "chromium ready (/usr/bin/chromium)$(command -v wrk >/dev/null && echo ', wrk ready')"
fi
