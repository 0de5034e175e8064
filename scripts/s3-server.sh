#!/usr/bin/env bash
# Starts a real S3-compatible server for the s3 tests: single-node OpenStack Swift with its s3api
# middleware (Debian packages), listening on loopback. It verifies SigV4 signatures
# (a wrong secret gets 403), and supports ListObjectsV2 and multipart uploads.
#
#   s3-server.sh start DIR [PORT]   start (installs the packages when missing); prints
#                                  S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION lines
#   s3-server.sh stop DIR           stop the servers started in DIR
#
# Adapted from the team's tested recipe. Tested as root on Debian 12: packages install in about 30 s, the proxy answers in about 4 s.
# Access key test:tester (note the colon: tools that split KEY:SECRET at the first colon, such
# as curl --user, cannot sign for it), secret testing, region us-east-1, path-style addressing.
set -euo pipefail
cmd=${1:?start|stop}; S=${2:?state directory}; PORT=${3:-8089}
stop() {
  for n in proxy object container account; do
    [ -f "$S/run/$n.pid" ] && kill "$(cat "$S/run/$n.pid")" 2>/dev/null || true
  done
  sleep 1
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
# Idempotent install: only the Debian packages that are missing are fetched.
pkgs="swift swift-proxy swift-object swift-container swift-account"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "missing packages:$missing (run as root to install them)" >&2; exit 1; }
  apt-get update -qq >/dev/null 2>&1 || true
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
mkdir -p "$S/etc" "$S/srv/node/d1" "$S/run" "$S/log"
base=$((PORT + 100))   # account, container, object servers on base, base+1, base+2
cat > "$S/etc/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = m365vault-test
swift_hash_path_prefix = m365vault-test
[storage-policy:0]
name = gold
default = yes
CONF
i=0
for n in account container object; do
  p=$((base + i)); i=$((i + 1))
  cat > "$S/etc/$n-server.conf" <<CONF
[DEFAULT]
devices = $S/srv/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = $p
workers = 1
user = $(id -un)
swift_dir = $S/etc
[pipeline:main]
pipeline = $n-server
[app:$n-server]
use = egg:swift#$n
[$n-replicator]
[$n-updater]
[$n-auditor]
CONF
  if [ ! -f "$S/etc/$n.ring.gz" ]; then
    (cd "$S/etc" && swift-ring-builder $n.builder create 10 1 1 >/dev/null &&
      swift-ring-builder $n.builder add r1z1-127.0.0.1:$p/d1 1 >/dev/null &&
      { swift-ring-builder $n.builder rebalance >/dev/null 2>&1 || true; })
  fi
done
cat > "$S/etc/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 1
user = $(id -un)
swift_dir = $S/etc
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:s3api]
use = egg:swift#s3api
# Host "<bucket>.localhost" selects virtual-host addressing; any other host is path-style.
storage_domain = localhost
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF
stop
for n in account container object proxy; do
  SWIFT_DIR="$S/etc" setsid swift-$n-server "$S/etc/$n-server.conf" >"$S/log/$n.log" 2>&1 &
  echo $! >"$S/run/$n.pid"
done
for _ in $(seq 1 120); do
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthcheck" 2>/dev/null | grep -q 200 && break
  sleep 0.5
done
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthcheck" | grep -q 200 || { echo "swift proxy did not start; see $S/log" >&2; exit 1; }
echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
echo "S3_ACCESS_KEY=test:tester"
echo "S3_SECRET_KEY=testing"
echo "S3_REGION=us-east-1"
