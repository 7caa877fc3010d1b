#!/usr/bin/env bash
# Fuzzes what a client controls, one target after another, for a bounded time each:
#   CodecFuzz       the gRPC deframer and protobuf decoding
#   ValidatorFuzz   each domain's validators on decoded requests
#   ConnectionFuzz  the HTTP/2 connection as a whole: bytes after a valid preface, over TCP, to a
#                   server in process (nghttp2 and every server callback), which must keep answering
#
#   tools/fuzz/run.sh [SECONDS] [TARGET...]
#       libFuzzer (coverage-guided) with AddressSanitizer: a release build of its own in
#       .build-fuzz (long the first time: every dependency is built instrumented), then
#       SECONDS (default 60) per target; the corpus grows in .build-fuzz/corpus/TARGET.
#   tools/fuzz/run.sh --mutate SECONDS [TARGET...]
#       No build of its own: the debug binaries of `swift build` mutate the seed inputs at
#       random for SECONDS per target (Swift's runtime checks and the targets' assertions,
#       no coverage guidance, no sanitizer). What CI runs (tools/test.sh).
# Seeds come from tools/fuzz/seeds.py. A crash stops the script with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${TALLY_PYTHON:-.venv/bin/python3}
ALL=(CodecFuzz ValidatorFuzz ConnectionFuzz)

MUTATE=0
if [[ "${1:-}" == "--mutate" ]]; then
  MUTATE=1
  shift
fi
SECONDS_PER_TARGET=${1:-60}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL[@]}")

if [[ $MUTATE -eq 1 ]]; then
  SEEDS=$(mktemp -d)
  trap 'rm -rf "$SEEDS"' EXIT
  "$PYTHON" tools/fuzz/seeds.py "$SEEDS" > /dev/null
  BIN=$(swift build --show-bin-path)
  for target in "${TARGETS[@]}"; do
    [[ -x "$BIN/$target" ]] || { echo "run.sh: $BIN/$target missing (swift build first)" >&2; exit 2; }
    "$BIN/$target" --mutate "$SECONDS_PER_TARGET" "$SEEDS/$target"
  done
  exit 0
fi

SCRATCH=.build-fuzz
"$PYTHON" tools/fuzz/seeds.py "$SCRATCH/seeds" > /dev/null
FLAGS=(-c release --scratch-path "$SCRATCH" -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library
       -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld)
for target in "${TARGETS[@]}"; do
  swift build "${FLAGS[@]}" --product "$target" 2>&1 | grep -E "error|warning: unre" || true
done
BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)
mkdir -p "$SCRATCH/artifacts"
for target in "${TARGETS[@]}"; do
  mkdir -p "$SCRATCH/corpus/$target"
  # -timeout: an input that runs this long is a hang, reported like a crash.
  "$BIN/$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="$SCRATCH/artifacts/$target-" "$SCRATCH/corpus/$target" "$SCRATCH/seeds/$target" 2>&1 | tail -3
  echo "$target: no crash in $SECONDS_PER_TARGET s; corpus: $(ls "$SCRATCH/corpus/$target" | wc -l) inputs"
done
