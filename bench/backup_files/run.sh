#!/bin/bash
# Benchmarks `m365vaultd backup run --category onedrive` against graph-emulator on
# this machine (HTTPS, files through /content and the pre-authenticated download
# URL), a private PostgreSQL cluster and a filesystem repository.
#
#   bench/backup_files/run.sh [build dir]
#
# 1. Large files: LARGE_USERS OneDrives of LARGE_MB MiB each (a few files, most of
#    the bytes in one or two large binaries), backed up once with one download at
#    a time per drive and once with DOWNLOADS (4) at once, side by side on the same
#    tenant (fresh database and repository each): MB/s, CPU seconds of m365vaultd
#    and of the emulator, the daemon's peak RSS.
# 2. Small files: SMALL_USERS OneDrives of SMALL_FILES files (about 10 KiB each):
#    files/s, CPU seconds and peak RSS.
# 3. One file of HUGE_MB MiB (2 GiB; HUGE_MB=0 skips it): MB/s and the daemon's
#    peak RSS (VmHWM), which must stay under 300 MB whatever the file's size.
# Environment: LARGE_USERS, LARGE_MB, SMALL_USERS, SMALL_FILES, HUGE_MB, DOWNLOADS,
# EMU_THREADS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
LARGE_USERS=${LARGE_USERS:-4} LARGE_MB=${LARGE_MB:-256}
SMALL_USERS=${SMALL_USERS:-4} SMALL_FILES=${SMALL_FILES:-1000}
HUGE_MB=${HUGE_MB:-2048} DOWNLOADS=${DOWNLOADS:-4} EMU_THREADS=${EMU_THREADS:-2}

source "$here/../backup_services.sh"

# Runs `backup run --category onedrive` of scenario $1, sampling the daemon's VmHWM;
# sets secs, hwm_kb, dcpu, ecpu, out, files, bytes.
backup() {
  local name=$1 e0 e1 t0 t1 pid db=${pg_url/dbname=m365vault/dbname=bench_$1}
  e0=$(cpu_s "$emu_pid")
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$name.time" "$daemon" --config "$work/$name.toml" backup run --tenant "$name" \
    --category onedrive >"$work/$name.out" 2>&1 &
  pid=$!
  hwm_kb=0
  while kill -0 "$pid" 2>/dev/null; do
    # /usr/bin/time's child: the daemon itself.
    local d
    d=$(pgrep -P "$pid" -f m365vaultd | head -1 || true)
    if [ -n "$d" ]; then
      local h
      h=$(awk '/^VmHWM:/ {print $2}' "/proc/$d/status" 2>/dev/null || echo 0)
      [ -n "$h" ] && [ "$h" -gt "$hwm_kb" ] && hwm_kb=$h
    fi
    sleep 0.2
  done
  wait "$pid" || { cat "$work/$name.out"; exit 1; }
  t1=$(date +%s.%N)
  e1=$(cpu_s "$emu_pid")
  secs=$(echo "$t1 - $t0" | bc -l)
  ecpu=$(echo "$e1 - $e0" | bc -l)
  local maxrss
  maxrss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
  [ "$maxrss" -gt "$hwm_kb" ] && hwm_kb=$maxrss
  dcpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$name.time")
  out=$(tail -1 "$work/$name.out")
  files=$(psql "$db" -tAc "SELECT count(*) FROM item_versions WHERE category = 'onedrive' AND content_size IS NOT NULL")
  bytes=$(psql "$db" -tAc "SELECT coalesce(sum(content_size), 0) FROM item_versions WHERE category = 'onedrive'")
}

dl() { printf '[backup]\ndownloads_per_drive = %s\n' "$1"; }

report() {  # label
  printf '%-30s %6d files %8.1f MB %7.1f s %7.1f MB/s %7.0f files/s  CPU daemon %6.1f s  emulator %6.1f s  peak RSS %4.0f MB\n' \
    "$1" "$files" "$(echo "$bytes / 1000000" | bc -l)" "$secs" "$(echo "$bytes / 1000000 / $secs" | bc -l)" \
    "$(echo "$files / $secs" | bc -l)" "$dcpu" "$ecpu" "$(echo "$hwm_kb / 1024" | bc -l)"
}

tenant() {  # tid seed users files_per_user bytes_per_user
  admin POST /_emulator/tenants "{\"tenant_id\":\"$1\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
    \"seed\":$2,\"users\":$3,\"messages_per_user\":0,\"contacts_per_user\":0,\"events_per_user\":0,
    \"drive_files_per_user\":$4,\"drive_bytes_per_user\":$5,\"sites\":0}" >/dev/null
}

echo "graph-emulator at $url ($EMU_THREADS I/O threads); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Throughput, not SharePoint's resource-unit budget (a small tenant's is small:
# thousands of /content calls a minute would be answered 429).
admin PUT /_emulator/faults '{"sharepoint_ru_per_minute":100000000}' >/dev/null

# ---------------------------------------------------------------- large files
tenant t-large 7 "$LARGE_USERS" 8 $((LARGE_MB << 20))
# The emulator hashes each file once (cached): pay that before timing anything.
admin GET "/_emulator/tenants/t-large/manifest?category=files" >/dev/null
setup large_seq t-large "$(dl 1)"
backup large_seq
report "large, 1 download/drive"
setup large_par t-large "$(dl "$DOWNLOADS")"
backup large_par
report "large, $DOWNLOADS downloads/drive"

# ---------------------------------------------------------------- small files
tenant t-small 8 "$SMALL_USERS" "$SMALL_FILES" $((SMALL_FILES * 10240))
admin GET "/_emulator/tenants/t-small/manifest?category=files" >/dev/null
setup small_seq t-small "$(dl 1)"
backup small_seq
report "small, 1 download/drive"
setup small_par t-small "$(dl "$DOWNLOADS")"
backup small_par
report "small, $DOWNLOADS downloads/drive"

# ---------------------------------------------------------------- one huge file
[ "$HUGE_MB" = 0 ] && exit 0
# One file per drive takes the whole budget unless the generator made it an
# office file or a handbook copy: try seeds until it is a file of the full size.
want=$((HUGE_MB << 20))
for seed in $(seq 1 20); do
  tenant "t-huge$seed" "$seed" 1 1 "$want"
  size=$(admin GET "/_emulator/tenants/t-huge$seed/manifest?category=files" | jq '[.items[].size] | max // 0')
  [ "$size" -ge "$want" ] && break
done
[ "$size" -ge "$want" ] || { echo "no seed gave a $HUGE_MB MiB file"; exit 1; }
setup huge "t-huge$seed" "$(dl "$DOWNLOADS")"
backup huge
report "one file of $HUGE_MB MiB"
[ "$hwm_kb" -lt $((300 * 1024)) ] && echo "peak RSS under 300 MB: yes" || echo "peak RSS under 300 MB: NO"
