# Sourced by the benchmarks that run m365vaultd against the emulator
# (bench/backup_*/run.sh, bench/restore, bench/export) after they set $build and
# EMU_THREADS: builds what they run, starts graph-emulator over HTTPS and a
# private PostgreSQL cluster in a scratch directory ($work, removed on exit unless
# KEEP is set), and defines cpu_s, admin and setup.
# NO_BUILD=1: use what is built (another build of the same tree is running).
[ -n "${NO_BUILD:-}" ] || ninja -C "$build" graph-emulator m365vaultd m365vault-test-pg >/dev/null
emu_bin=${EMU_BIN:-$build/emulator/graph-emulator}
daemon=$build/daemon/m365vaultd
pgtool=$build/tests/m365vault-test-pg
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-backup-XXXXXX")
chmod 755 "$work"  # the test-pg tool runs PostgreSQL as its own user when we are root
emu_pid=
cleanup() {
  [ -n "$emu_pid" ] && { kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; }
  "$pgtool" stop "$work/pg" >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# CPU seconds (user + system) of a live process.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

# CPU seconds of the PostgreSQL cluster: the postmaster, its live children and
# the children it has reaped (backends of connections already closed). Taken
# before and after a run, the difference is what the run cost the database.
pg_cpu_s() {
  local pm; pm=$(head -1 "$(find "$work/pg" -name postmaster.pid | head -1)")
  { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
    for c in $(cat "/proc/$pm/task/$pm/children" 2>/dev/null); do awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true; done
  } | awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {print s / hz}'
}

# Samples the CPU time of every thread of process $1 every 0.5 s until it ends
# and writes the last sample of each as "seconds tid name" to $2, busiest first
# (up to half a second of each thread's end is not seen).
watch_threads() {
  local pid=$1 out=$2
  : >"$out.samples"
  while [ -d "/proc/$pid" ]; do
    cat /proc/"$pid"/task/*/stat 2>/dev/null >>"$out.samples" || true
    sleep 0.5
  done
  awk -v hz="$(getconf CLK_TCK)" '{
      name = $0; sub(/^[0-9]+ \(/, "", name); sub(/\) .*/, "", name)
      rest = $0; sub(/^.*\) /, "", rest); split(rest, f, " ")
      t[$1] = (f[12] + f[13]) / hz; n[$1] = name
    } END {for (k in t) printf "%.2f %s %s\n", t[k], k, n[k]}' "$out.samples" | sort -rg >"$out"
  rm -f "$out.samples"
}

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

# A fresh database and repository per scenario, the tenant registered:
#   setup name tenant_id [extra TOML]
setup() {
  local name=$1 tid=$2 extra=${3:-} db="bench_$1"
  psql "$pg_url" -qc "CREATE DATABASE $db" >/dev/null
  local dburl=${pg_url/dbname=m365vault/dbname=$db}
  cat >"$work/$name.toml" <<TOML
[database]
url = "$dburl"
[storage]
data_dir = "$work/$name-data"
repository = "file://$work/$name-repo"
passphrase_file = "$work/passphrase"
$extra
[log]
level = "warn"
TOML
  "${DAEMON_BIN:-$daemon}" --config "$work/$name.toml" repo init >/dev/null 2>&1
  "${DAEMON_BIN:-$daemon}" --config "$work/$name.toml" tenant add --name "$name" --tenant-id "$tid" --client-id app-bench \
    --client-secret-file "$work/secret" --graph-url "$url" --login-url "$url" --ca-file "$ca" >/dev/null
}
