#!/usr/bin/env bash
# Stops every process of the suite (SIGTERM, up to 10 s each to finish in-flight work).
#   ./scripts/stop.sh           stop; `npx pm2 start ecosystem.config.js` or ./scripts/start.sh brings them back
#   ./scripts/stop.sh --delete  also remove them from PM2's process list
set -euo pipefail

cd "$(dirname "$0")/.."
PM2=./node_modules/.bin/pm2
[ -x "$PM2" ] || { echo "stop: pm2 is not installed (./scripts/setup.sh installs it): nothing to stop"; exit 0; }

case "${1:-}" in
  "") "$PM2" stop ecosystem.config.js ;;
  --delete) "$PM2" delete ecosystem.config.js ;;
  *) echo "stop: unknown option $1 (use --delete or nothing)" >&2; exit 2 ;;
esac
