#!/usr/bin/env bash
# Builds the `ordo` PostgreSQL extension with PGXS, installs it into the
# local PostgreSQL (needs root, or write access to PostgreSQL's lib and share
# directories), and builds the standalone wire-codec test program.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_MAJOR=${ORDO_PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
make -s -C pgext PG_CONFIG="$PG_CONFIG" with_llvm=no
if [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
  make -s -C pgext PG_CONFIG="$PG_CONFIG" with_llvm=no install
elif [ ! -f "$("$PG_CONFIG" --pkglibdir)/ordo.so" ]; then
  echo "ordo setup: cannot install the extension into $("$PG_CONFIG" --pkglibdir); run as root" >&2
  exit 1
fi
make -s -C pgext PG_CONFIG="$PG_CONFIG" wire_test
