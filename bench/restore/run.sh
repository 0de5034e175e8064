#!/bin/bash
# Benchmarks `m365vaultd restore` into an unthrottled graph-emulator on this
# machine (HTTPS), with a private PostgreSQL cluster and a filesystem repository.
#
#   bench/restore/run.sh [build dir]
#
# Backs up USERS users (mail: MESSAGES each; OneDrive: FILES files sharing
# DRIVE_BYTES each), then restores (1) every message and (2) every file into a new
# folder of their own user ("--to-folder ..."), so every item is written.
# Per restore it prints messages/s (files: MB/s) over the command's wall time, the
# Graph requests the emulator answered (per item and per second), the
# CPU of m365vaultd, the emulator and PostgreSQL per message (files: CPU-s per GB
# restored), the rate those CPU costs allow on the machine's idle cores (the three
# share them: on a shared, busy machine the wall-clock rate is depressed, the CPU
# bound is not), the daemon's peak RSS and the load average.
# Environment: USERS, MESSAGES, FOLDERS, MAX_ATTACH, FILES, DRIVE_BYTES, EMU_THREADS,
# RUNS (restores of each kind per daemon, default 1; medians are printed),
# COMPARE=<another m365vaultd> (restores alternate between the two on the same
# backed-up tenant, side by side, and the ratios close: a change measured
# before/after; it must accept this tree's database schema).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
USERS=${USERS:-8} MESSAGES=${MESSAGES:-1000} FOLDERS=${FOLDERS:-6} MAX_ATTACH=${MAX_ATTACH:-20000}
FILES=${FILES:-12} DRIVE_BYTES=${DRIVE_BYTES:-100000000} EMU_THREADS=${EMU_THREADS:-2} RUNS=${RUNS:-1}

source "$here/../backup_services.sh"
setup bench t-bench
cfg=(--config "$work/bench.toml")
dburl=${pg_url/dbname=m365vault/dbname=bench_bench}
sql() { psql "$dburl" -tAc "$1"; }

echo "graph-emulator at $url ($EMU_THREADS I/O threads); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tenant: $USERS users x $MESSAGES messages in $FOLDERS folders, $FILES files sharing $DRIVE_BYTES bytes per user"
admin POST /_emulator/tenants "{\"tenant_id\":\"t-bench\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
  \"seed\":7,\"users\":$USERS,\"mail_folders_per_user\":$FOLDERS,\"messages_per_user\":$MESSAGES,
  \"contacts_per_user\":0,\"events_per_user\":0,\"max_attachment_bytes\":$MAX_ATTACH,
  \"drive_files_per_user\":$FILES,\"drive_bytes_per_user\":$DRIVE_BYTES,\"sites\":0}" >/dev/null
# Unthrottled: the mailbox budgets and SharePoint's resource units (1,200 a minute for
# this tenant's size, contract 9: the third restore of a minute waited out the window).
admin PUT /_emulator/faults '{"mailbox_requests_per_window":100000000,"window_seconds":600,"sharepoint_ru_per_minute":100000000}' >/dev/null
"$daemon" "${cfg[@]}" backup run --tenant bench --category mail,onedrive >"$work/backup.out" 2>&1 || { cat "$work/backup.out"; exit 1; }
echo "backed up: $(tail -1 "$work/backup.out")"

declare -A rate dcost ecost pcost rss
labels=(this)
[ -n "${COMPARE:-}" ] && labels+=(compare)

# Restores category $1 with daemon $3 into a new folder of each user, as label $2
# run $4; prints the figures and adds them to the medians. Per unit: a message
# (CPU ms per message) or a GB of files (CPU s per GB).
restore() {
  local cat=$1 label=$2 d=$3 r=$4 reqs e0 e1 p0 p1 t0 t1 secs n bytes failed rid dcpu ecpu pcpu rss_kb per unit_rate
  admin DELETE /_emulator/stats >/dev/null
  e0=$(cpu_s "$emu_pid") p0=$(pg_cpu_s)
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$cat.time" "$d" "${cfg[@]}" restore --tenant bench --category "$cat" \
    --to-folder "Bench $cat $label $r" >"$work/$cat.out" 2>&1 || { cat "$work/$cat.out"; exit 1; }
  t1=$(date +%s.%N)
  e1=$(cpu_s "$emu_pid") p1=$(pg_cpu_s)
  secs=$(echo "$t1 - $t0" | bc -l)
  rid=$(sql "SELECT id FROM restores ORDER BY created_at DESC LIMIT 1")
  n=$(sql "SELECT count(*) FROM restore_items WHERE restore_id = '$rid' AND outcome = 'restored'")
  failed=$(sql "SELECT count(*) FROM restore_items WHERE restore_id = '$rid' AND outcome <> 'restored'")
  bytes=$(sql "SELECT coalesce(sum(v.content_size), 0) FROM restore_items x JOIN item_versions v ON v.id = x.version_id
               WHERE x.restore_id = '$rid' AND x.outcome = 'restored'")
  dcpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$cat.time")
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$cat.time")
  ecpu=$(echo "$e1 - $e0" | bc -l) pcpu=$(echo "$p1 - $p0" | bc -l)
  # Graph requests the emulator answered (a rate the client's pacer may hold down).
  reqs=$(admin GET /_emulator/stats | python3 -c 'import json, sys; print(sum(json.load(sys.stdin)["requests"].values()))')
  if [ "$cat" = mail ]; then
    per=$(echo "1000 / $n" | bc -l) unit_rate=$(echo "$n / $secs" | bc -l)  # ms per message, messages/s
  else
    per=$(echo "1000000000 / $bytes" | bc -l) unit_rate=$(echo "$bytes / 1000000 / $secs" | bc -l)  # s per GB, MB/s
  fi
  local k="$cat,$label"
  rate[$k]+="$unit_rate " rss[$k]+="$((rss_kb / 1024)) "
  dcost[$k]+="$(echo "$dcpu * $per" | bc -l) " ecost[$k]+="$(echo "$ecpu * $per" | bc -l) " pcost[$k]+="$(echo "$pcpu * $per" | bc -l) "
  printf '[%s %s, run %s] %s\n' "$cat" "$label" "$r" "$(tail -1 "$work/$cat.out")"
  printf '  %d restored (%d not), %.1f MB in %.1f s: %.0f msg/s, %.1f MB/s; %d Graph requests (%.2f per item, %.0f/s); CPU s daemon %.1f, emulator %.1f, PostgreSQL %.1f; peak RSS %d MB; load %s\n' \
    "$n" "$failed" "$(echo "$bytes / 1000000" | bc -l)" "$secs" "$(echo "$n / $secs" | bc -l)" \
    "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$reqs" "$(echo "$reqs / $n" | bc -l)" "$(echo "$reqs / $secs" | bc -l)" \
    "$dcpu" "$ecpu" "$pcpu" "$((rss_kb / 1024))" "$(cut -d' ' -f1 /proc/loadavg)"
  [ "$failed" = 0 ] || sql "SELECT '  not restored: ' || count(*) || ' ' || outcome || ' (' || coalesce(detail, '') || ')'
                             FROM restore_items WHERE restore_id = '$rid' AND outcome <> 'restored' GROUP BY outcome, detail"
}

for r in $(seq "$RUNS"); do
  for cat in mail onedrive; do
    for label in "${labels[@]}"; do
      d=$daemon
      [ "$label" = compare ] && d=$COMPARE
      restore "$cat" "$label" "$d" "$r"
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "medians of $RUNS run(s); load average now $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A all
for cat in mail onedrive; do
  if [ "$cat" = mail ]; then u="msg/s" c="CPU ms/msg"; else u="MB/s" c="CPU s/GB"; fi
  for label in "${labels[@]}"; do
    k="$cat,$label"
    d=$(echo "${dcost[$k]}" | median) e=$(echo "${ecost[$k]}" | median) p=$(echo "${pcost[$k]}" | median)
    all[$k]=$(echo "$d + $e + $p" | bc -l)
    # The CPU bound: the three processes share the idle cores (n cores / ms per
    # message = thousands of messages/s; n cores / s per GB = thousands of MB/s).
    bound=$(echo "$(nproc) * 1000 / ${all[$k]}" | bc -l)
    printf '%-8s %-8s %7.1f %-6s %s daemon %.3f emulator %.3f PostgreSQL %.3f (all %.3f); CPU bound on %d idle cores %.0f %s; peak RSS %s MB\n' \
      "$cat" "$label" "$(echo "${rate[$k]}" | median)" "$u" "$c" "$d" "$e" "$p" "${all[$k]}" "$(nproc)" "$bound" "$u" \
      "$(echo "${rss[$k]}" | median)"
  done
  if [ -n "${COMPARE:-}" ]; then
    ratio() { echo "$(echo "$1" | median) / $(echo "$2" | median)" | bc -l; }
    printf '%-8s this / compare: %.2f x %s; %s %.2f x daemon, %.2f x emulator, %.2f x PostgreSQL, %.2f x all\n' "$cat" \
      "$(ratio "${rate[$cat,this]}" "${rate[$cat,compare]}")" "$u" "$c" \
      "$(ratio "${dcost[$cat,this]}" "${dcost[$cat,compare]}")" "$(ratio "${ecost[$cat,this]}" "${ecost[$cat,compare]}")" \
      "$(ratio "${pcost[$cat,this]}" "${pcost[$cat,compare]}")" "$(echo "${all[$cat,this]} / ${all[$cat,compare]}" | bc -l)"
  fi
done
