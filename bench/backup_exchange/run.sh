#!/bin/bash
# Benchmarks `m365vaultd backup run` of Exchange mail against graph-emulator on
# this machine (HTTPS), a private PostgreSQL cluster and a filesystem repository.
#
#   bench/backup_exchange/run.sh [build dir]
#
# 1. Unthrottled: USERS x MESSAGES messages (default 50 x 2,000 = 100,000); prints
#    messages/s, MB/s, CPU seconds of m365vaultd, of the emulator and of
#    PostgreSQL, the daemon's CPU seconds per thread (the busiest is the I/O
#    thread; busy near 100 % of the wall time, it is the bound), and the daemon's
#    peak RSS.
# 2. Throttled: THR_USERS (8) mailboxes under the emulator's per-mailbox budget
#    (THR_LIMIT requests per THR_WINDOW seconds); prints the requests each mailbox
#    achieved as a fraction of what the budget allowed over the run.
# Environment: USERS, MESSAGES, FOLDERS, MAX_ATTACH, EMU_THREADS, THR_USERS,
# THR_MESSAGES, THR_LIMIT, THR_WINDOW, SKIP_THROTTLED=1, RUNS (unthrottled runs,
# default 1; medians are printed), COMPARE=<another m365vaultd> (alternates runs
# with it, side by side, and prints the ratios: a change measured before/after).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
USERS=${USERS:-50} MESSAGES=${MESSAGES:-2000} FOLDERS=${FOLDERS:-8} MAX_ATTACH=${MAX_ATTACH:-20000}
EMU_THREADS=${EMU_THREADS:-2}
RUNS=${RUNS:-1}
THR_USERS=${THR_USERS:-8} THR_MESSAGES=${THR_MESSAGES:-400} THR_LIMIT=${THR_LIMIT:-120} THR_WINDOW=${THR_WINDOW:-10}

source "$here/../backup_services.sh"

# Runs `backup run` of tenant $1 (mail only) under /usr/bin/time; sets secs,
# rss_kb, dcpu, ecpu, pcpu (PostgreSQL), busy (the daemon's busiest thread:
# "seconds tid name"), out.
backup() {
  local name=$1 e0 e1 p0 p1 t0 t1 tpid dpid= wpid rc=0
  e0=$(cpu_s "$emu_pid")
  p0=$(pg_cpu_s)
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$name.time" ${DAEMON_WRAP:-} "${DAEMON_BIN:-$daemon}" --config "$work/$name.toml" backup run --tenant "$name" \
    --category mail >"$work/$name.out" 2>&1 &
  tpid=$!
  for _ in $(seq 100); do dpid=$(pgrep -P "$tpid" | head -1) && break; sleep 0.01; done
  watch_threads "${dpid:-0}" "$work/$name.threads" &
  wpid=$!
  wait "$tpid" || rc=$?
  t1=$(date +%s.%N)
  wait "$wpid"
  [ "$rc" = 0 ] || { cat "$work/$name.out"; exit 1; }
  e1=$(cpu_s "$emu_pid")
  p1=$(pg_cpu_s)
  secs=$(echo "$t1 - $t0" | bc -l)
  ecpu=$(echo "$e1 - $e0" | bc -l)
  pcpu=$(echo "$p1 - $p0" | bc -l)
  busy=$(head -1 "$work/$name.threads" 2>/dev/null || echo "0 ? ?")
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$name.time")
  dcpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$name.time")
  out=$(tail -1 "$work/$name.out")
}

echo "graph-emulator at $url ($EMU_THREADS I/O threads); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- unthrottled
echo "creating tenant: $USERS users x $MESSAGES messages in $FOLDERS folders (attachments <= $MAX_ATTACH bytes)"
admin POST /_emulator/tenants "{\"tenant_id\":\"t-bench\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
  \"seed\":7,\"users\":$USERS,\"mail_folders_per_user\":$FOLDERS,\"messages_per_user\":$MESSAGES,
  \"contacts_per_user\":0,\"events_per_user\":0,\"max_attachment_bytes\":$MAX_ATTACH}" >/dev/null
admin PUT /_emulator/faults '{"mailbox_requests_per_window":100000000,"window_seconds":600}' >/dev/null
# Each run backs the whole tenant up into a fresh database and repository; with
# COMPARE the runs alternate between the two daemons (side by side, so the load of
# a shared machine falls on both alike) and the medians and their ratio close.
declare -A rate mbs cpu_msg ecpu_msg pcpu_msg busy_frac rss total
labels=(this)
[ -n "${COMPARE:-}" ] && labels+=(compare)
for r in $(seq "$RUNS"); do
  for label in "${labels[@]}"; do
    name="full_${label}_$r"
    d=$daemon
    [ "$label" = compare ] && d=$COMPARE
    DAEMON_BIN=$d setup "$name" t-bench
    admin DELETE /_emulator/stats >/dev/null
    DAEMON_BIN=$d backup "$name"
    db="${pg_url/dbname=m365vault/dbname=bench_$name}"
    msgs=$(psql "$db" -tAc "SELECT count(*) FROM item_versions WHERE category = 'mail'")
    bytes=$(psql "$db" -tAc "SELECT coalesce(sum(content_size), 0) FROM item_versions WHERE category = 'mail'")
    reqs=$(admin GET /_emulator/stats | jq '[.status[]] | add')
    echo "[$label, run $r] $out"
    printf '  %-32s %s\n' "messages backed up" "$msgs ($(echo "$bytes / 1000000" | bc -l | xargs printf '%.1f') MB of MIME, $reqs Graph requests)"
    printf '  %-32s %.1f s; load average %s\n' "wall time of 'backup run'" "$secs" "$(cut -d' ' -f1 /proc/loadavg)"
    rate[$label]+="$(echo "$msgs / $secs" | bc -l) "
    mbs[$label]+="$(echo "$bytes / 1000000 / $secs" | bc -l) "
    cpu_msg[$label]+="$(echo "$dcpu * 1000 / $msgs" | bc -l) "
    ecpu_msg[$label]+="$(echo "$ecpu * 1000 / $msgs" | bc -l) "
    rss[$label]+="$(echo "$rss_kb / 1024" | bc -l) "
    pcpu_msg[$label]+="$(echo "$pcpu * 1000 / $msgs" | bc -l) "
    read -r busy_s _ busy_name <<<"$busy"
    busy_frac[$label]+="$(echo "$busy_s / $secs" | bc -l) "
    printf '  %-32s %.0f msg/s, %.1f MB/s, CPU %.1f s daemon / %.1f s emulator / %.1f s PostgreSQL, peak RSS %.0f MB\n' "figures" \
      "$(echo "$msgs / $secs" | bc -l)" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$dcpu" "$ecpu" "$pcpu" "$(echo "$rss_kb / 1024" | bc -l)"
    printf '  %-32s %s\n' "daemon threads over 0.5 s (CPU s)" \
      "$(awk '$1 >= 0.5 {printf "%s%.1f", sep, $1; sep = ", "}' "$work/$name.threads")"
    printf '  %-32s %.1f s of %.1f s wall (%.0f %% busy)\n' "busiest daemon thread" "$busy_s" "$secs" \
      "$(echo "100 * $busy_s / $secs" | bc -l)"
    psql "$pg_url" -qc "DROP DATABASE bench_$name" >/dev/null
    rm -rf "$work/$name-repo" "$work/$name-data"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
echo "medians of $RUNS run(s):"
for label in "${labels[@]}"; do
  d=$(echo "${cpu_msg[$label]}" | median) e=$(echo "${ecpu_msg[$label]}" | median) p=$(echo "${pcpu_msg[$label]}" | median)
  total[$label]=$(echo "$d + $e + $p" | bc -l)
  printf '%-10s %6.0f msg/s  %5.1f MB/s  CPU ms/msg daemon %.3f  emulator %.3f  PostgreSQL %.3f  (all %.3f)  busiest thread %.0f %%  peak RSS %.0f MB\n' "$label" \
    "$(echo "${rate[$label]}" | median)" "$(echo "${mbs[$label]}" | median)" "$d" "$e" "$p" "${total[$label]}" \
    "$(echo "${busy_frac[$label]}" | median | awk '{print 100 * $1}')" "$(echo "${rss[$label]}" | median)"
done
# The three share the machine's cores: their CPU per message bounds the rate of
# an otherwise idle machine. Near it, the cores are the limit; far below it with
# the busiest daemon thread near 100 %, that thread is.
printf 'CPU bound on %d idle cores: %.0f msg/s (this)\n' "$(nproc)" "$(echo "$(nproc) * 1000 / ${total[this]}" | bc -l)"
if [ -n "${COMPARE:-}" ]; then
  ratio() { echo "$(echo "$1" | median) / $(echo "$2" | median)" | bc -l; }
  printf 'this / compare: %.2f x msg/s; CPU per message %.2f x daemon, %.2f x emulator, %.2f x PostgreSQL, %.2f x all\n' \
    "$(ratio "${rate[this]}" "${rate[compare]}")" "$(ratio "${cpu_msg[this]}" "${cpu_msg[compare]}")" \
    "$(ratio "${ecpu_msg[this]}" "${ecpu_msg[compare]}")" "$(ratio "${pcpu_msg[this]}" "${pcpu_msg[compare]}")" \
    "$(echo "${total[this]} / ${total[compare]}" | bc -l)"
fi

[ "${SKIP_THROTTLED:-}" = 1 ] && exit 0
# ---------------------------------------------------------------- throttled
echo
echo "throttled: $THR_USERS mailboxes x $THR_MESSAGES messages, $THR_LIMIT requests per $THR_WINDOW s per mailbox"
admin POST /_emulator/tenants "{\"tenant_id\":\"t-thr\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
  \"seed\":8,\"users\":$THR_USERS,\"mail_folders_per_user\":4,\"messages_per_user\":$THR_MESSAGES,
  \"contacts_per_user\":0,\"events_per_user\":0,\"max_attachment_bytes\":$MAX_ATTACH}" >/dev/null
setup thr t-thr
admin PUT /_emulator/faults "{\"mailbox_requests_per_window\":$THR_LIMIT,\"window_seconds\":$THR_WINDOW}" >/dev/null
w0=$(date +%s.%N)  # the windows start here
admin DELETE /_emulator/stats >/dev/null
backup thr
stats=$(admin GET /_emulator/stats)
ok=$(echo "$stats" | jq '[.requests | to_entries[] | select(.key | test("/users/\\{id\\}/")) | .value] | add')
throttled=$(echo "$stats" | jq '.status["429"] // 0')
run_s=$(psql "${pg_url/dbname=m365vault/dbname=bench_thr}" -tAc "SELECT extract(epoch FROM finished_at - started_at) FROM runs ORDER BY queued_at DESC LIMIT 1")
echo "$out"
# Fixed windows since the PUT: the budget of the whole windows elapsed is what the
# run could have used before its last window, which is cut short when the work runs
# out. Lower bound: every window touched counted in full.
elapsed=$(echo "$(date +%s.%N) - $w0" | bc -l)
whole=$(echo "scale=0; $elapsed / $THR_WINDOW" | bc -l)
per_mbx=$(echo "($ok - $throttled) / $THR_USERS" | bc -l)
frac_whole=$(echo "f = $per_mbx / ($THR_LIMIT * ($whole + ($whole == 0))); if (f > 1) 1 else f" | bc -l)
frac_low=$(echo "$per_mbx / ($THR_LIMIT * ($whole + 1))" | bc -l)
printf '%-34s %.1f s, %s mailbox requests, %s answered 429\n' "throttled run" "$run_s" "$ok" "$throttled"
printf '%-34s %.0f over %.1f s at %d per %d s window: %.2f of the limit over the %d whole windows (lower bound %.2f)\n' \
  "requests per mailbox" "$per_mbx" "$elapsed" "$THR_LIMIT" "$THR_WINDOW" "$frac_whole" "$whole" "$frac_low"
