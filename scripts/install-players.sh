#!/usr/bin/env bash
# The JavaScript players the tests run in headless Chromium (hls.js, dash.js), from npm into
# build/players, at the versions tests/players/package-lock.json pins. Node and npm come from
# Debian when missing. Does nothing when the installed lock file is already the pinned one.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=build/players
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

if ! command -v npm >/dev/null; then
  echo "installing system packages: nodejs npm"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm
fi
if cmp -s tests/players/package-lock.json "$dest/package-lock.json" && [ -d "$dest/node_modules" ]; then
  exit 0
fi
mkdir -p "$dest"
cp tests/players/package.json tests/players/package-lock.json "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
