#!/bin/bash
# Benchmarks `m365vaultd backup run --category onedrive` against graph-emulator on
# this machine (HTTPS, files through /content and the pre-authenticated download
# URL), a private PostgreSQL cluster and a filesystem repository.
#
#   bench/backup_files/run.sh [build dir]
#
# Cases (CASES, default "large many small huge"):
# - large: LARGE_USERS OneDrives of LARGE_MB MiB each (a few files, most of the
#   bytes in one or two large binaries), backed up with 1 download per drive and
#   with DOWNLOADS (4), each on a fresh database and repository: MB/s, CPU seconds
#   per GB of m365vaultd, of the emulator and of PostgreSQL, the rate their summed
#   CPU allows on idle cores ("CPU bound": the machine is shared, so the wall-clock
#   MB/s is lower), the daemon's peak RSS.
# - many: MANY_USERS OneDrives of MANY_MB MiB (more owners than the 8 backed up at
#   once, DOWNLOADS each): the daemon's peak RSS with every owner downloading.
# - small: SMALL_USERS OneDrives of SMALL_FILES files (about 10 KiB each): files/s.
# - huge: one file of HUGE_MB MiB (2 GiB): MB/s and peak RSS (VmHWM), which must
#   stay under 300 MB whatever the file's size.
# RUNS (default 1) repeats each case and prints medians. COMPARE=<another
# m365vaultd> alternates every case between the two daemons (side by side, so the
# load of a shared machine falls on both alike) and prints the ratios of the
# medians: a change measured before/after. EMU_BIN=<another graph-emulator> serves
# with that emulator instead (an emulator change is measured in two runs of the
# script, or by its CPU seconds per GB, which do not depend on the daemon).
# PERF=<path prefix> records a profile of each daemon run (perf record -g) into
# <prefix>.<scenario> (its CPU figures then include perf's own).
# Environment: CASES, RUNS, COMPARE, EMU_BIN, LARGE_USERS, LARGE_MB, MANY_USERS,
# MANY_MB, SMALL_USERS, SMALL_FILES, HUGE_MB, DOWNLOADS, EMU_THREADS, EXTRA_TOML
# (added to the [backup] section of every scenario).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
LARGE_USERS=${LARGE_USERS:-4} LARGE_MB=${LARGE_MB:-256}
SMALL_USERS=${SMALL_USERS:-4} SMALL_FILES=${SMALL_FILES:-1000}
HUGE_MB=${HUGE_MB:-2048} DOWNLOADS=${DOWNLOADS:-4} EMU_THREADS=${EMU_THREADS:-2}
MANY_USERS=${MANY_USERS:-16} MANY_MB=${MANY_MB:-100}
CASES=${CASES:-large many small huge} RUNS=${RUNS:-1}

source "$here/../backup_services.sh"

# Runs `backup run --category onedrive` of scenario $1, sampling the daemon's VmHWM;
# sets secs, hwm_kb, dcpu, ecpu, pcpu (PostgreSQL), out, files, bytes.
backup() {
  local name=$1 e0 e1 p0 p1 t0 t1 pid db=${pg_url/dbname=m365vault/dbname=bench_$1}
  e0=$(cpu_s "$emu_pid")
  p0=$(pg_cpu_s)
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$name.time" ${PERF:+perf record -F 999 -g -o "$PERF.$name"} "${DAEMON_BIN:-$daemon}" --config "$work/$name.toml" backup run --tenant "$name" \
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
  p1=$(pg_cpu_s)
  secs=$(echo "$t1 - $t0" | bc -l)
  ecpu=$(echo "$e1 - $e0" | bc -l)
  pcpu=$(echo "$p1 - $p0" | bc -l)
  local maxrss
  maxrss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
  [ "$maxrss" -gt "$hwm_kb" ] && hwm_kb=$maxrss
  dcpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$name.time")
  out=$(tail -1 "$work/$name.out")
  files=$(psql "$db" -tAc "SELECT count(*) FROM item_versions WHERE category = 'onedrive' AND content_size IS NOT NULL")
  bytes=$(psql "$db" -tAc "SELECT coalesce(sum(content_size), 0) FROM item_versions WHERE category = 'onedrive'")
}

dl() { printf '[backup]\ndownloads_per_drive = %s\n%s\n' "$1" "${EXTRA_TOML:-}"; }

mb() { echo "$bytes / 1000000" | bc -l; }
report() {  # label
  printf '%-34s %6d files %8.1f MB %7.1f s %7.1f MB/s %6.0f files/s  CPU s/GB daemon %5.1f emulator %5.1f PostgreSQL %5.2f  peak RSS %4.0f MB  load %s\n' \
    "$1" "$files" "$(mb)" "$secs" "$(echo "$(mb) / $secs" | bc -l)" "$(echo "$files / $secs" | bc -l)" \
    "$(echo "$dcpu * 1000 / $(mb)" | bc -l)" "$(echo "$ecpu * 1000 / $(mb)" | bc -l)" "$(echo "$pcpu * 1000 / $(mb)" | bc -l)" \
    "$(echo "$hwm_kb / 1024" | bc -l)" \
    "$(cut -d' ' -f1 /proc/loadavg)"
}

tenant() {  # tid seed users files_per_user bytes_per_user
  admin POST /_emulator/tenants "{\"tenant_id\":\"$1\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
    \"seed\":$2,\"users\":$3,\"messages_per_user\":0,\"contacts_per_user\":0,\"events_per_user\":0,
    \"drive_files_per_user\":$4,\"drive_bytes_per_user\":$5,\"sites\":0}" >/dev/null
  # The emulator hashes each file once (cached): pay that before timing anything.
  admin GET "/_emulator/tenants/$1/manifest?category=files" >/dev/null
}

labels=(this)
[ -n "${COMPARE:-}" ] && labels+=(compare)
declare -A mbs fps dgb egb pgb rss
# measure key tenant downloads: every label RUNS times, alternating; collects medians under key.
measure() {
  local key=$1 tid=$2 n=$3 r label
  for r in $(seq "$RUNS"); do
    for label in "${labels[@]}"; do
      local name="${key}_${label}_$r" d=$daemon
      [ "$label" = compare ] && d=$COMPARE
      DAEMON_BIN=$d setup "$name" "$tid" "$(dl "$n")"
      DAEMON_BIN=$d backup "$name"
      report "$key [$label $r]"
      mbs[$key/$label]+="$(echo "$(mb) / $secs" | bc -l) "
      fps[$key/$label]+="$(echo "$files / $secs" | bc -l) "
      dgb[$key/$label]+="$(echo "$dcpu * 1000 / $(mb)" | bc -l) "
      egb[$key/$label]+="$(echo "$ecpu * 1000 / $(mb)" | bc -l) "
      pgb[$key/$label]+="$(echo "$pcpu * 1000 / $(mb)" | bc -l) "
      rss[$key/$label]+="$(echo "$hwm_kb / 1024" | bc -l) "
      psql "$pg_url" -qc "DROP DATABASE bench_$name" >/dev/null
      rm -rf "$work/$name-repo" "$work/$name-data"
    done
  done
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
keys=()

echo "graph-emulator at $url ($EMU_THREADS I/O threads); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Throughput, not SharePoint's resource-unit budget (a small tenant's is small:
# thousands of /content calls a minute would be answered 429).
admin PUT /_emulator/faults '{"sharepoint_ru_per_minute":100000000}' >/dev/null

for case in $CASES; do
  case $case in
    large)
      tenant t-large 7 "$LARGE_USERS" 8 $((LARGE_MB << 20))
      measure "large_1" t-large 1
      measure "large_$DOWNLOADS" t-large "$DOWNLOADS"
      keys+=("large_1" "large_$DOWNLOADS")
      ;;
    many)
      tenant t-many 9 "$MANY_USERS" 8 $((MANY_MB << 20))
      measure "many_$MANY_USERS" t-many "$DOWNLOADS"
      keys+=("many_$MANY_USERS")
      ;;
    small)
      tenant t-small 8 "$SMALL_USERS" "$SMALL_FILES" $((SMALL_FILES * 10240))
      measure "small_1" t-small 1
      measure "small_$DOWNLOADS" t-small "$DOWNLOADS"
      keys+=("small_1" "small_$DOWNLOADS")
      ;;
    huge)
      # One file per drive takes the whole budget unless the generator made it an
      # office file or a handbook copy: try seeds until it is a file of the full size.
      want=$((HUGE_MB << 20))
      for seed in $(seq 1 20); do
        tenant "t-huge$seed" "$seed" 1 1 "$want"
        size=$(admin GET "/_emulator/tenants/t-huge$seed/manifest?category=files" | jq '[.items[].size] | max // 0')
        [ "$size" -ge "$want" ] && break
      done
      [ "$size" -ge "$want" ] || { echo "no seed gave a $HUGE_MB MiB file"; exit 1; }
      measure "huge" "t-huge$seed" "$DOWNLOADS"
      keys+=("huge")
      ;;
    *) echo "unknown case '$case' (large, many, small, huge)"; exit 2 ;;
  esac
done

echo
echo "medians of $RUNS run(s); load average $(cut -d' ' -f1-3 /proc/loadavg):"
for key in "${keys[@]}"; do
  for label in "${labels[@]}"; do
    k=$key/$label
    d=$(echo "${dgb[$k]}" | median) e=$(echo "${egb[$k]}" | median) p=$(echo "${pgb[$k]}" | median)
    # The three share the machine's cores: their summed CPU per GB bounds the rate
    # of an otherwise idle machine (the wall-clock rate of a shared one is lower).
    printf '%-10s %-8s %7.1f MB/s %6.0f files/s  CPU s/GB daemon %5.1f emulator %5.1f PostgreSQL %5.2f  CPU bound on %d idle cores %6.0f MB/s  peak RSS %4.0f MB\n' \
      "$key" "$label" "$(echo "${mbs[$k]}" | median)" "$(echo "${fps[$k]}" | median)" "$d" "$e" "$p" "$(nproc)" \
      "$(echo "$(nproc) * 1000 / ($d + $e + $p)" | bc -l)" "$(echo "${rss[$k]}" | median)"
  done
  if [ -n "${COMPARE:-}" ]; then
    printf '%-10s this / compare: %.2f x MB/s, %.2f x daemon CPU per GB, %.2f x peak RSS\n' "$key" \
      "$(echo "$(echo "${mbs[$key/this]}" | median) / $(echo "${mbs[$key/compare]}" | median)" | bc -l)" \
      "$(echo "$(echo "${dgb[$key/this]}" | median) / $(echo "${dgb[$key/compare]}" | median)" | bc -l)" \
      "$(echo "$(echo "${rss[$key/this]}" | median) / $(echo "${rss[$key/compare]}" | median)" | bc -l)"
  fi
done
for key in "${keys[@]}"; do
  [ "$key" = huge ] || [ "${key#many}" != "$key" ] || continue
  h=$(echo "${rss[$key/this]}" | median)
  [ "$(echo "$h < 300" | bc -l)" = 1 ] && echo "$key: peak RSS under 300 MB: yes" || echo "$key: peak RSS under 300 MB: NO"
done
