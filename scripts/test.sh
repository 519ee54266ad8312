#!/usr/bin/env bash
# `npm test`: typecheck, lint (layer boundaries included), every test on SQLite, then the database-touching suites
# (integration and end-to-end) again on PostgreSQL.
#
# The PostgreSQL pass needs a server and a role that may CREATE DATABASE:
#   GPUBOT_TEST_POSTGRES_URL=postgresql://gpubot:gpubot@127.0.0.1:5432/postgres npm test
# .ci/run starts one and sets it. Without it, the pass is skipped locally (said so on
# stderr) and fails in CI (CI set), so it can never be missed there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

npm run --silent typecheck
npm run --silent lint
vitest run

if [[ -n "${GPUBOT_TEST_POSTGRES_URL:-}" ]]; then
  echo "== the database-touching suites again, on PostgreSQL" >&2
  GPUBOT_TEST_DATABASE=postgres vitest run test/integration test/e2e
elif [[ -n "${CI:-}" ]]; then
  echo "CI: GPUBOT_TEST_POSTGRES_URL is not set, so the PostgreSQL pass cannot run (.ci/run sets it)" >&2
  exit 1
else
  echo "note: the PostgreSQL pass was skipped: set GPUBOT_TEST_POSTGRES_URL to run it (see scripts/test.sh)" >&2
fi
