#!/usr/bin/env bash
# Installs what is missing, builds m365vaultd and runs `m365vaultd demo`: a private
# PostgreSQL and a local repository under the demo data directory, the API on
# http://127.0.0.1:8080. Ctrl-C stops it (and its PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --run
scripts/build.sh m365vaultd
exec build/daemon/m365vaultd demo "$@"
