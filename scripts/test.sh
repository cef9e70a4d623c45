#!/usr/bin/env bash
# The whole test suite, as CI runs it: typecheck, lint, build, jest (Express 4 and 5), package checks.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== typecheck"; npx tsc --noEmit -p .
echo "== lint"; npx biome check .
echo "== build"; npm run --silent build
echo "== chromium"; bash scripts/ensure-chromium.sh
echo "== redis"; bash scripts/ensure-redis.sh
echo "== tests"; npx jest --detectOpenHandles "$@"
echo "== package"; bash scripts/check-package.sh
