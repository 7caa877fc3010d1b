#!/usr/bin/env bash
# Fuzzes the gRPC deframer and protobuf decoding (tools/fuzz/CodecFuzz) with libFuzzer and
# AddressSanitizer for a bounded time, then replays the corpus with a normal build.
#   tools/fuzz/run.sh [SECONDS]     (default 60)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_TO_RUN=${1:-60}
SCRATCH=.build-fuzz
CORPUS=$SCRATCH/corpus
mkdir -p "$CORPUS"
# Seeds: a valid Echo frame, an empty frame, a gzip-flagged frame.
printf '\x00\x00\x00\x00\x22\x00\x00\x00\x00\x22\x0a\x20%s' "$(printf 'x%.0s' {1..32})" > "$CORPUS/seed-echo"
printf '\x04\x00\x00\x00\x00\x00' > "$CORPUS/seed-empty"
printf '\x05\x01\x00\x00\x00\x05\x1f\x8b\x08\x00\x00' > "$CORPUS/seed-gzip"

swift build -c release --scratch-path "$SCRATCH" --product CodecFuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld 2>&1 | grep -E "error|warning: unre" || true
BIN=$(swift build -c release --scratch-path "$SCRATCH" --show-bin-path)/CodecFuzz
mkdir -p "$SCRATCH/artifacts"
"$BIN" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=4096 -max_len=65536 \
  -artifact_prefix="$SCRATCH/artifacts/" "$CORPUS" 2>&1 | tail -5
echo "fuzzing finished without a crash ($SECONDS_TO_RUN s); corpus: $(ls "$CORPUS" | wc -l) inputs"
