#!/usr/bin/env bash
# One-command set-up for a fresh Debian machine (run as root) or a developer
# checkout: installs PostgreSQL and its server headers when missing, installs
# the npm dependencies, builds the C++ addon, the TypeScript and the
# PostgreSQL extension, and installs the extension into PostgreSQL.
#
# Idempotent: each step checks whether it is needed. `npm start` and
# `npm test` both run it first.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=${ORDO_PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
log() { printf 'ordo setup: %s\n' "$*" >&2; }

need_apt=()
[ -x "$PG_BIN/postgres" ] || need_apt+=("postgresql-$PG_MAJOR")
[ -f "/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/makefiles/pgxs.mk" ] || need_apt+=("postgresql-server-dev-$PG_MAJOR")
command -v make >/dev/null || need_apt+=(make)
command -v g++ >/dev/null || need_apt+=(g++)
command -v runuser >/dev/null || need_apt+=(util-linux)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing ${need_apt[*]}; run this as root once (or: sudo apt-get install ${need_apt[*]})"
    exit 1
  fi
  log "installing ${need_apt[*]} from Debian"
  # No default cluster: ordo starts its own instances.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/ordo.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# PostgreSQL runs as the `postgres` user when we are root; Debian's package
# creates it, but a machine with a hand-built server may not have it.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  log "creating the postgres user"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# npm dependencies (npm ci also builds the addon through the install script).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f build/Release/ordo.node ] || [ -n "$(find native binding.gyp -newer build/Release/ordo.node -print -quit)" ]; then
  log "building the native addon"
  npx --no-install node-gyp rebuild --silent
fi

log "compiling TypeScript"
npx --no-install tsc -p tsconfig.json

log "building and installing the PostgreSQL extension"
bash scripts/build-pgext.sh
