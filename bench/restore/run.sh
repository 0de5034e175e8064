#!/bin/bash
# Benchmarks `m365vaultd restore` into an unthrottled graph-emulator on this
# machine (HTTPS), with a private PostgreSQL cluster and a filesystem repository.
#
#   bench/restore/run.sh [build dir]
#
# Backs up USERS users (mail: MESSAGES each; OneDrive: FILES files sharing
# DRIVE_BYTES each), then restores (1) every message and (2) every file into a new
# folder of their own user ("--to-folder Bench ..."), so every item is written.
# Prints messages/s and MB/s (restored bytes over the run's own duration and over
# the command's wall time), CPU seconds of m365vaultd and of the emulator.
# Environment: USERS, MESSAGES, FOLDERS, MAX_ATTACH, FILES, DRIVE_BYTES, EMU_THREADS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
USERS=${USERS:-8} MESSAGES=${MESSAGES:-1000} FOLDERS=${FOLDERS:-6} MAX_ATTACH=${MAX_ATTACH:-20000}
FILES=${FILES:-12} DRIVE_BYTES=${DRIVE_BYTES:-100000000} EMU_THREADS=${EMU_THREADS:-2}

ninja -C "$build" graph-emulator m365vaultd m365vault-test-pg >/dev/null
emu_bin=$build/emulator/graph-emulator
daemon=$build/daemon/m365vaultd
pgtool=$build/tests/m365vault-test-pg
work=$(mktemp -d -t bench-restore-XXXXXX)
chmod 755 "$work"
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && { kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; }
  "$pgtool" stop "$work/pg" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

"$emu_bin" --listen 127.0.0.1:0 --tls-dir "$work/tls" --threads "$EMU_THREADS" >"$work/emu.out" 2>&1 &
emu_pid=$!
for _ in $(seq 200); do grep -qs '^listening on ' "$work/emu.out" && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$work/emu.out")
[ -n "$url" ] || { cat "$work/emu.out"; exit 1; }
ca=$work/tls/ca.pem
admin() { curl -sS --fail --cacert "$ca" -X "$1" -H 'content-type: application/json' "$url$2" ${3:+--data "$3"}; }
pg_url=$("$pgtool" start "$work/pg" 2>"$work/pg.log") || { cat "$work/pg.log"; exit 1; }
echo "secret-bench" >"$work/secret"
echo "bench passphrase" >"$work/passphrase"
psql "$pg_url" -qc "CREATE DATABASE bench" >/dev/null
dburl=${pg_url/dbname=m365vault/dbname=bench}
cat >"$work/bench.toml" <<TOML
[database]
url = "$dburl"
[storage]
data_dir = "$work/data"
repository = "file://$work/repo"
passphrase_file = "$work/passphrase"
[log]
level = "warn"
TOML
cfg=(--config "$work/bench.toml")
sql() { psql "$dburl" -tAc "$1"; }

echo "graph-emulator at $url ($EMU_THREADS I/O threads); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tenant: $USERS users x $MESSAGES messages in $FOLDERS folders, $FILES files sharing $DRIVE_BYTES bytes per user"
admin POST /_emulator/tenants "{\"tenant_id\":\"t-bench\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
  \"seed\":7,\"users\":$USERS,\"mail_folders_per_user\":$FOLDERS,\"messages_per_user\":$MESSAGES,
  \"contacts_per_user\":0,\"events_per_user\":0,\"max_attachment_bytes\":$MAX_ATTACH,
  \"drive_files_per_user\":$FILES,\"drive_bytes_per_user\":$DRIVE_BYTES,\"sites\":0}" >/dev/null
admin PUT /_emulator/faults '{"mailbox_requests_per_window":100000000,"window_seconds":600}' >/dev/null
"$daemon" "${cfg[@]}" repo init >/dev/null
"$daemon" "${cfg[@]}" tenant add --name bench --tenant-id t-bench --client-id app-bench \
  --client-secret-file "$work/secret" --graph-url "$url" --login-url "$url" --ca-file "$ca" >/dev/null
"$daemon" "${cfg[@]}" backup run --tenant bench --category mail,onedrive >"$work/backup.out" 2>&1 || { cat "$work/backup.out"; exit 1; }
echo "backed up: $(tail -1 "$work/backup.out")"

# Restores category $1 into a new folder of each user; prints the figures.
restore() {
  local cat=$1 unit=$2 e0 e1 t0 t1 secs run_s n bytes
  e0=$(cpu_s "$emu_pid")
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$cat.time" "$daemon" "${cfg[@]}" restore --tenant bench --category "$cat" \
    --to-folder "Bench $cat" >"$work/$cat.out" 2>&1 || { cat "$work/$cat.out"; exit 1; }
  t1=$(date +%s.%N)
  e1=$(cpu_s "$emu_pid")
  secs=$(echo "$t1 - $t0" | bc -l)
  run_s=$(sql "SELECT extract(epoch FROM r.finished_at - r.started_at) FROM runs r JOIN jobs j ON j.id = r.job_id
               WHERE j.kind = 'restore' ORDER BY r.queued_at DESC LIMIT 1")
  n=$(sql "SELECT count(*) FROM restore_items WHERE outcome = 'restored' AND category = '$cat'")
  bytes=$(sql "SELECT coalesce(sum(v.content_size), 0) FROM restore_items x JOIN item_versions v ON v.id = x.version_id
               WHERE x.outcome = 'restored' AND x.category = '$cat'")
  failed=$(sql "SELECT count(*) FROM restore_items WHERE outcome = 'failed' AND category = '$cat'")
  echo
  echo "restore of $cat: $(tail -1 "$work/$cat.out")"
  printf '%-30s %s (%s failed), %.1f MB\n' "$unit restored" "$n" "$failed" "$(echo "$bytes / 1000000" | bc -l)"
  printf '%-30s %.1f s (the run itself: %.1f s)\n' "wall time of 'restore'" "$secs" "$run_s"
  printf '%-30s %.0f %s/s (run: %.0f)\n' "$unit/s" "$(echo "$n / $secs" | bc -l)" "$unit" "$(echo "$n / $run_s" | bc -l)"
  printf '%-30s %.1f MB/s (run: %.1f)\n' "MB/s" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$(echo "$bytes / 1000000 / $run_s" | bc -l)"
  printf '%-30s %.1f s m365vaultd, %.1f s graph-emulator\n' "CPU" \
    "$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$cat.time")" "$(echo "$e1 - $e0" | bc -l)"
}
restore mail messages
restore onedrive files
