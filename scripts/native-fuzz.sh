#!/usr/bin/env bash
# Builds the libFuzzer harnesses native/fuzz/fuzz_frame.cc and
# native/fuzz/fuzz_records.cc (with the same core sources as the addon), and
# pgext/test/fuzz_wire.c (with the extension's C99 codec pgext/wire.c), under
# AddressSanitizer and UndefinedBehaviorSanitizer, runs each for SECONDS, and
# prints how many inputs it executed and whether it found anything. Decoders
# must reject, never crash; the native harnesses also cross-check the hardware
# and table CRC32C paths, and the wire harness re-encodes what decodes. Needs
# clang (libFuzzer); on Debian, if linking -fsanitize=fuzzer fails:
# apt-get install libclang-rt-14-dev.
#
# Usage: scripts/native-fuzz.sh [SECONDS] [TARGET]   (TARGET: frame | records | wire; default all)
# Output: build/fuzz/<target> binaries, build/fuzz/corpus/<target>/, crash files
# in build/fuzz/artifacts/, and the full log in build/fuzz/<target>.log.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$root/build/fuzz"
seconds="${1:-30}"
target="${2:-all}"

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
  echo "native-fuzz: SECONDS must be a positive integer, got '$seconds'" >&2
  exit 2
fi
case "$target" in
  all) targets=(frame records wire) ;;
  frame | records | wire) targets=("$target") ;;
  *) echo "native-fuzz: TARGET must be frame, records or wire, got '$target'" >&2; exit 2 ;;
esac

cxx="${CXX:-}"
if [[ -z "$cxx" ]]; then
  for candidate in clang++-14 clang++; do
    if command -v "$candidate" >/dev/null 2>&1; then
      cxx="$candidate"
      break
    fi
  done
fi
[[ -n "$cxx" ]] || { echo "native-fuzz: clang++ not found (libFuzzer needs clang)" >&2; exit 1; }
cc="${CC_FUZZ:-}"
if [[ -z "$cc" ]]; then
  for candidate in clang-14 clang; do
    if command -v "$candidate" >/dev/null 2>&1; then
      cc="$candidate"
      break
    fi
  done
fi
[[ -n "$cc" ]] || { echo "native-fuzz: clang not found (libFuzzer needs clang)" >&2; exit 1; }

declare -A sources=(
  [frame]="native/fuzz/fuzz_frame.cc native/frame.cc native/crc32c.cc"
  [records]="native/fuzz/fuzz_records.cc native/records.cc native/crc32c.cc"
  [wire]="pgext/test/fuzz_wire.c pgext/wire.c"
)
# The wire codec is plain C99, like the extension that links it.
declare -A languages=(
  [frame]=c++
  [records]=c++
  [wire]=c
)

mkdir -p "$out_dir/artifacts"
cd "$root"
status=0
for name in "${targets[@]}"; do
  binary="$out_dir/fuzz_$name"
  corpus="$out_dir/corpus/$name"
  log="$out_dir/$name.log"
  mkdir -p "$corpus"
  if [[ "${languages[$name]}" == c ]]; then
    compiler=("$cc" -std=c99)
  else
    compiler=("$cxx" -std=c++17)
  fi
  # shellcheck disable=SC2086
  "${compiler[@]}" -O1 -g -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Werror ${sources[$name]} -o "$binary"
  set +e
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$binary" "$corpus" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$out_dir/artifacts/${name}-" -timeout=10 -rss_limit_mb=2048 \
    >"$log" 2>&1
  rc=$?
  set -e
  runs="$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1 || true)"
  if [[ -z "$runs" ]]; then
    runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1 || true)"
  fi
  corpus_files="$(find "$corpus" -type f | wc -l)"
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$name: ${runs:-?} executions in ${seconds} s, corpus $corpus_files inputs, no findings"
  else
    status=1
    echo "fuzz_$name: FAILED (exit $rc) after ${runs:-?} executions; see $log"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -10 || true
  fi
done
exit $status
