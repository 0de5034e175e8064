#!/bin/bash
# Benchmarks `m365vaultd export` (the API's export, to a file): the emulator's
# tenant (HTTPS) backed up into a private PostgreSQL cluster and a filesystem
# repository, then mail as .eml, mail as mbox and OneDrive files exported, each
# side by side in one run. Prints MB/s of exported content (before compression),
# the zip's size and the exporting process's peak RSS.
#
#   bench/export/run.sh [build dir]
# Environment: USERS (4), MESSAGES (1000 per user), CONTACTS (1000 per user),
# DRIVE_MB (200 per user), FILES (100 per user); COMPARE and REPEAT below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
USERS=${USERS:-4} MESSAGES=${MESSAGES:-1000} CONTACTS=${CONTACTS:-1000} DRIVE_MB=${DRIVE_MB:-200} FILES=${FILES:-100} EMU_THREADS=${EMU_THREADS:-2}

source "$here/../backup_services.sh"
setup bench t-bench

echo "tenant: $USERS users x $MESSAGES messages, $CONTACTS contacts, $FILES files / $DRIVE_MB MB of OneDrive each"
admin POST /_emulator/tenants "{\"tenant_id\":\"t-bench\",\"client_id\":\"app-bench\",\"client_secret\":\"secret-bench\",
  \"seed\":7,\"users\":$USERS,\"mail_folders_per_user\":6,\"messages_per_user\":$MESSAGES,\"contacts_per_user\":$CONTACTS,
  \"events_per_user\":0,\"drive_files_per_user\":$FILES,\"drive_bytes_per_user\":$((DRIVE_MB << 20))}" >/dev/null
admin PUT /_emulator/faults '{"mailbox_requests_per_window":100000000,"window_seconds":600}' >/dev/null
"$daemon" --config "$work/bench.toml" backup run --tenant bench --category mail,contacts,onedrive >"$work/backup.out" 2>&1 ||
  { cat "$work/backup.out"; exit 1; }
tail -1 "$work/backup.out"

# Exports category $2 (plus flags) with binary $3 as $1.zip; prints its line and
# appends "MB/s items/s" to $work/$1.figures.
export_one() {
  local name=$1 cat=$2 bin=$3
  shift 3
  /usr/bin/time -v -o "$work/$name.time" "$bin" --config "$work/bench.toml" export --tenant bench --category "$cat" "$@" \
    --output "$work/$name.zip" >"$work/$name.out" 2>&1 || { cat "$work/$name.out"; exit 1; }
  local line rss cpu mb items secs
  line=$(tail -1 "$work/$name.out")
  rss=$(awk '/Maximum resident set size/ {print $6}' "$work/$name.time")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/$name.time")
  mb=$(sed -n 's/.* files, \([0-9.]*\) \([KMG]\)B exported.*/\1 \2/p' "$work/$name.out" |
    awk '{print $2 == "G" ? $1 * 1024 : $2 == "K" ? $1 / 1024 : $1}')
  items=$(sed -n 's/.*: \([0-9]*\) items in .*/\1/p' "$work/$name.out")
  secs=$(sed -n 's/.*zipped) in \([0-9.e+-]*\) s,.*/\1/p' "$work/$name.out")
  unzip -tq "$work/$name.zip" >/dev/null || { echo "$name: unzip -t failed"; exit 1; }
  printf '%-10s %s; CPU %.1f s = %.1f MB per CPU-second; %.0f items/s; peak RSS %d MB; load %s\n' "$name" "${line#*: }" \
    "$cpu" "$(echo "$mb / $cpu" | bc -l)" "$(echo "$items / $secs" | bc -l)" "$((rss / 1024))" "$(cut -d' ' -f1 /proc/loadavg)"
  echo "$(echo "$mb / $secs" | bc -l) $(echo "$items / $secs" | bc -l)" >>"$work/$name.figures"
  rm -f "$work/$name.zip"
}

# Median of column $2 of file $1.
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# COMPARE=<another m365vaultd> (say, a copy of the binary before a change):
# each export runs REPEAT times (default 3 with COMPARE, else 1) with this
# build and that binary alternately, on the same backup, then medians and ratios.
REPEAT=${REPEAT:-$([ -n "${COMPARE:-}" ] && echo 3 || echo 1)}
for spec in "eml mail" "mbox mail --mbox" "vcf contacts" "files onedrive"; do
  set -- $spec
  name=$1 cat=$2
  shift 2
  for _ in $(seq "$REPEAT"); do
    export_one "$name" "$cat" "$daemon" "$@"
    [ -z "${COMPARE:-}" ] || export_one "$name-old" "$cat" "$COMPARE" "$@"
  done
  if [ -n "${COMPARE:-}" ]; then
    new_mb=$(median "$work/$name.figures" 1) new_it=$(median "$work/$name.figures" 2)
    old_mb=$(median "$work/$name-old.figures" 1) old_it=$(median "$work/$name-old.figures" 2)
    printf '%-10s median of %d: this build %.1f MB/s %.0f items/s; COMPARE %.1f MB/s %.0f items/s; ratio %.2f\n' \
      "$name" "$REPEAT" "$new_mb" "$new_it" "$old_mb" "$old_it" "$(echo "$new_it / $old_it" | bc -l)"
  fi
done
