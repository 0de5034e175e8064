#!/usr/bin/env bash
# Installs what is missing, builds everything and runs every test against real
# services it starts here and stops afterwards: a throwaway PostgreSQL cluster
# (run by the unprivileged user m365vault when we are root, unix socket only) and
# a real S3 server (OpenStack Swift with s3api, scripts/s3-server.sh).
#   scripts/test.sh [--sanitize] [ctest arguments, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build_flag=()
dir=build
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build_flag=(--sanitize)
  dir=build-asan
fi
scripts/build.sh "${build_flag[@]}"

# openapi.yaml is the API's contract: it must at least be a valid OpenAPI 3.1 document.
npm_bin=$(scripts/npm-tools.sh)
"$npm_bin/redocly" lint --format=summary openapi.yaml

work=$(mktemp -d "${TMPDIR:-/tmp}/m365vault-test-services-XXXXXX")
chmod 755 "$work"
cleanup() {
  "$dir/tests/m365vault-test-pg" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

M365VAULT_TEST_PG_URL=$("$dir/tests/m365vault-test-pg" start "$work/pg" 2>"$work/pg-start.log") || {
  cat "$work/pg-start.log" >&2
  exit 1
}
export M365VAULT_TEST_PG_URL
# The API tests hold the server to openapi.yaml (routes, roles): they read it as JSON.
"$npm_bin/redocly" bundle openapi.yaml --ext json -o "$work/openapi.json" >/dev/null 2>&1
export M365VAULT_TEST_OPENAPI_JSON="$work/openapi.json"
echo "test PostgreSQL: $M365VAULT_TEST_PG_URL"

root=$(pwd)
cd "$dir"
"$root/scripts/with-s3.sh" ctest --output-on-failure -j 2 "$@"
