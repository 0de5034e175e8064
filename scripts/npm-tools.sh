#!/usr/bin/env bash
# Installs the npm tools the tests use, pinned, into a cache outside the repo
# (once; later calls just print the directory). Prints the bin directory.
#   @redocly/cli 1.34.20: lints openapi.yaml (runs on Debian's Node 18 and on Node 20;
#   1.34.21 does not install, 2.x needs Node >= 20.19).
set -euo pipefail
dir=${M365VAULT_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/m365vault/npm}
want="@redocly/cli@1.34.20"
if [ ! -x "$dir/node_modules/.bin/redocly" ] || ! grep -q '"version": "1.34.20"' "$dir/node_modules/@redocly/cli/package.json" 2>/dev/null; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "$want" >&2
fi
echo "$dir/node_modules/.bin"
