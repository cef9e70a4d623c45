#!/usr/bin/env bash
# The whole test suite, as CI runs it: typecheck, lint, build, jest (Express 4 and 5, browser,
# Redis), package checks. Installs Chromium and starts Redis first when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== typecheck"; npx tsc --noEmit -p . && npx tsc --noEmit -p __tests__/types
echo "== lint"; npx biome check .
echo "== build"; npm run --silent build
echo "== client size"; node scripts/check-client-size.js
echo "== chromium"; bash scripts/ensure-chromium.sh
echo "== redis"; bash scripts/ensure-redis.sh

echo "== tests"
mkdir -p .tmp
status=0
npx jest --detectOpenHandles --json --outputFile=.tmp/jest-results.json "$@" || status=$?
summary=$(node -e '
  const r = require("./.tmp/jest-results.json");
  console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' 2>/dev/null || echo "jest: 0 passed, 1 failed")
if [ "$status" -ne 0 ]; then echo "$summary"; exit "$status"; fi

echo "== package"; bash scripts/check-package.sh
echo "$summary"
