#!/bin/sh
# Benchmarks graph-emulator alone on loopback: delta items/s, MIME MB/s and file
# content MB/s (through the 302 to the download URL) with 4
# clients, the emulator on one I/O thread (one core). Usage: bench/emulator/run.sh [build dir]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
ninja -C "$build" graph-emulator emulator-bench >/dev/null
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$build/emulator/graph-emulator" --listen 127.0.0.1:0 --tls-dir "$work/tls" --threads 1 >"$work/out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '^listening on ' "$work/out" && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$url" ] || { cat "$work/out"; exit 1; }
echo "graph-emulator at $url (1 I/O thread), 4 clients"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (wall-clock figures suffer from other load; CPU-second figures do not)"
"$build/bench/emulator/emulator-bench" "$url" "$work/tls/ca.pem" 4 8 "$pid"
