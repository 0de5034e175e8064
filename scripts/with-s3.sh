#!/usr/bin/env bash
# Runs a command with a real S3 server (scripts/s3-server.sh) started for it and the
# tests' environment set, then stops the server:
#   scripts/with-s3.sh ctest --test-dir build -L s3
# Exports M365VAULT_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY and _REGION.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d "${TMPDIR:-/tmp}/m365vault-s3.XXXXXX")
# A free port by default (the proxy's, and the three storage servers' at +100..+102),
# so several engineers or CI jobs can run the tests on one machine at once.
free_port() {
  python3 - <<'PY'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(500):
    p = random.randint(20000, 40000)
    if all(free(q) for q in (p, p + 100, p + 101, p + 102)):
        print(p)
        break
PY
}
port=${M365VAULT_S3_PORT:-$(free_port)}
[ -n "$port" ] || { echo "no free port for the S3 server" >&2; exit 1; }
trap '"$here/s3-server.sh" stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
while IFS='=' read -r name value; do
  case "$name" in S3_*) export "M365VAULT_TEST_$name=$value" ;; esac
done < <("$here/s3-server.sh" start "$state" "$port")
[ -n "${M365VAULT_TEST_S3_ENDPOINT:-}" ] || { echo "the S3 server did not start" >&2; exit 1; }
"$@"
