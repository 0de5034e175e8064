#!/usr/bin/env bash
# Installs the Debian 12 packages m365vault builds, runs and tests with, when any
# is missing. Idempotent: a machine that has them all is left alone (no apt call).
#   scripts/deps.sh          build + run + test packages
#   scripts/deps.sh --run    only what `m365vaultd demo` needs to build and run
set -euo pipefail

build_pkgs=(build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-all-dev libboost-url1.81-dev nlohmann-json3-dev libpq-dev libssl-dev
  libspdlog-dev libzstd-dev libsystemd-dev libtomlplusplus-dev libhowardhinnant-date-dev libgmime-3.0-dev tzdata
  libarchive-dev libical-dev
  postgresql-15 openssl curl ca-certificates)
# unzip -t and Python's icalendar and vobject check exported zips, .ics and .vcf.
test_pkgs=(catch2 wrk unzip python3-icalendar python3-vobject)
# npm tools for tests come from the npm registry (scripts/npm-tools.sh); Node.js
# itself from Debian when the machine has none.
command -v npm >/dev/null 2>&1 || test_pkgs+=(nodejs npm)

pkgs=("${build_pkgs[@]}")
[ "${1:-}" = "--run" ] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The embedded PostgreSQL refuses to run as root: when we are root it runs as this
# unprivileged system user (config key database.embedded_user).
if [ "$(id -u)" = 0 ] && ! id m365vault >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/m365vault --no-create-home --shell /usr/sbin/nologin m365vault
fi
