#!/usr/bin/env bash
# HTTP benchmark: wrk (2 threads, 64 connections, 10 s) against GET /healthz of a
# real m365vaultd (embedded PostgreSQL, access log on at info level, written to a
# file). Prints wrk's figures and one summary line. One command:
#   bench/http/run.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh
scripts/build.sh m365vaultd >/dev/null
duration=${1:-10s}
work=$(mktemp -d "${TMPDIR:-/tmp}/m365vault-bench-XXXXXX")
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
M365VAULT_DATA_DIR="$work/data" M365VAULT_LISTEN="127.0.0.1:$port" build/daemon/m365vaultd serve >"$work/daemon.log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null
echo "m365vaultd $(build/daemon/m365vaultd --version | cut -d' ' -f2) on 127.0.0.1:$port, $(nproc) cores"
wrk -t2 -c64 -d"$duration" --latency "http://127.0.0.1:$port/healthz" | tee "$work/wrk.txt"
rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
errors=$(grep -E "Non-2xx|Socket errors" "$work/wrk.txt" || true)
p50=$(awk '$1=="50%" {print $2}' "$work/wrk.txt")
p99=$(awk '$1=="99%" {print $2}' "$work/wrk.txt")
echo "summary: healthz requests/s=$rps p50=$p50 p99=$p99 errors=${errors:-none}"
