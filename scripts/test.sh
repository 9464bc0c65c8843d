#!/usr/bin/env bash
# Installs everything the tests need (./scripts/setup.sh --dev), then runs pytest.
# Arguments go to pytest: ./scripts/test.sh tests/test_pm2.py -x
set -euo pipefail

cd "$(dirname "$0")/.."
./scripts/setup.sh --dev
exec ./.venv/bin/python -m pytest -p no:cacheprovider "$@"
