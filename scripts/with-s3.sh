#!/usr/bin/env bash
# Runs a command with a real S3 server (scripts/s3-server.sh) started for it and the
# tests' environment set, then stops the server:
#   scripts/with-s3.sh ctest --test-dir build -L s3
# Exports M365VAULT_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY and _REGION.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d "${TMPDIR:-/tmp}/m365vault-s3.XXXXXX")
port=${M365VAULT_S3_PORT:-8089}
trap '"$here/s3-server.sh" stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
while IFS='=' read -r name value; do
  case "$name" in S3_*) export "M365VAULT_TEST_$name=$value" ;; esac
done < <("$here/s3-server.sh" start "$state" "$port")
[ -n "${M365VAULT_TEST_S3_ENDPOINT:-}" ] || { echo "the S3 server did not start" >&2; exit 1; }
"$@"
