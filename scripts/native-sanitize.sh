#!/usr/bin/env bash
# Builds the pure C++ cores of native/ (crc32c, frame, records, crossbar, and
# conflict_table when present) with AddressSanitizer and
# UndefinedBehaviorSanitizer into a standalone driver
# (native/test/sanitize_main.cc) and runs it; any finding stops the run with a
# non-zero exit. These are the same sources binding.gyp builds into the addon.
#
# Usage: scripts/native-sanitize.sh [ITERATIONS] [SEED]
# Output: build/sanitize/sanitize_main
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$root/build/sanitize"
iterations="${1:-3000}"
seed="${2:-1869767791}"

cxx="${CXX:-}"
if [[ -z "$cxx" ]]; then
  for candidate in clang++-14 clang++ g++; do
    if command -v "$candidate" >/dev/null 2>&1; then
      cxx="$candidate"
      break
    fi
  done
fi
[[ -n "$cxx" ]] || { echo "native-sanitize: no C++ compiler found" >&2; exit 1; }

sources=(native/crc32c.cc native/frame.cc native/records.cc native/crossbar.cc native/test/sanitize_main.cc)
defines=()
if [[ -f "$root/native/conflict_table.cc" ]]; then
  sources+=(native/conflict_table.cc)
  defines+=(-DORDO_HAVE_CONFLICT_TABLE=1)
fi

mkdir -p "$out_dir"
cd "$root"
echo "native-sanitize: $cxx, ASan+UBSan, ${sources[*]}"
"$cxx" -std=c++17 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Werror "${defines[@]}" \
  "${sources[@]}" -o "$out_dir/sanitize_main"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
"$out_dir/sanitize_main" "$iterations" "$seed"
