#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind: installs the Debian packages, checks
# generated code is up to date, starts a private PostgreSQL and Redis (tools/services.sh),
# builds, runs the Swift tests (unit + over-the-wire) and the Python grpcio suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n==== %s\n' "$*"; }

step "Debian packages"
bash tools/install-deps.sh

step "generated code is up to date"
bash tools/codegen/generate.sh --check

step "Python venv (grpcio, protobuf, pytest)"
[[ -x .venv/bin/python3 ]] || python3 -m venv .venv
.venv/bin/pip install -q -r Tests/python/requirements.txt
export TALLY_PYTHON=$ROOT/.venv/bin/python3

step "local PostgreSQL and Redis"
# Private sets of tests that stop or kill a service live in ${TMPDIR:-/tmp}/tally-test-*, and
# each test removes its own; a run that was killed leaves its set behind. Sweep those over an
# hour old (a test's set lives seconds, so a run going on beside this one is never touched).
find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'tally-test-*' -type d -mmin +60 2> /dev/null | while read -r orphan; do
  TALLY_STATE_DIR=$orphan bash tools/services.sh stop > /dev/null 2>&1 || true
  rm -rf "$orphan" && echo "removed the orphaned test services in $orphan"
done
bash tools/services.sh start
# The Redis Cluster (3 masters, 3 replicas) the cluster tests share; REDIS_CLUSTER_URL.
bash tools/services.sh cluster start
# Stopped again at the end unless TALLY_KEEP_SERVICES=1 (handy while iterating).
[[ ${TALLY_KEEP_SERVICES:-0} == 1 ]] || trap 'bash tools/services.sh cluster stop; bash tools/services.sh stop' EXIT
set -a; source "${TALLY_STATE_DIR:-.tally}/services.env"; set +a

step "build"
swift build --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Linking|Write|Wrapping|Planning)' || true
swift build --build-tests > /dev/null

step "fuzz targets, bounded: seeds mutated at random, 25 s per target (tools/fuzz/run.sh --mutate)"
# The debug binaries of the build above: no build of their own. The coverage-guided run with
# AddressSanitizer (tools/fuzz/run.sh without --mutate) needs a release build of every
# dependency, instrumented, which takes longer than this whole step (see README, Fuzzing).
bash tools/fuzz/run.sh --mutate 25

step "codec fixtures from Python's protobuf"
export TALLY_CODEC_FIXTURES=$ROOT/.build/codec-fixtures
rm -rf "$TALLY_CODEC_FIXTURES"
.venv/bin/python3 Tests/python/codec_fixtures.py generate --out "$TALLY_CODEC_FIXTURES"

# Two runs, not one: on a 2-core machine the over-the-wire and load-tool suites saturate the
# CPU, and the storage suites' timing margins (leases, delays) should not compete with them.
step "Swift tests: codec, storage engines and product domains (real PostgreSQL and Redis)"
swift test --skip-build --filter "UnitsTests|CodecTests|StorageTests|DomainTests"
step "Swift tests: over the wire (server, client, load tool)"
swift test --skip-build --filter "RPCServerTests|TallyLoadTests|TallyTests"

step "codec fixtures: Swift's encodings read back by Python's protobuf"
.venv/bin/python3 Tests/python/codec_fixtures.py verify --dir "$TALLY_CODEC_FIXTURES"

step "Python grpcio tests"
TALLY_BIN=$ROOT/.build/debug/tally .venv/bin/python3 -m pytest -q -m "not cluster" Tests/python

step "Python grpcio tests against the Redis Cluster (REDIS_URL=redis+cluster://...)"
TALLY_TEST_REDIS_CLUSTER=1 TALLY_BIN=$ROOT/.build/debug/tally .venv/bin/python3 -m pytest -q -m "not cluster" \
  Tests/python/test_events_leaderboards.py Tests/python/test_topups.py Tests/python/test_quiz.py Tests/python/test_presence.py

step "Redis Cluster failover: a master killed mid-ingest through three instances"
TALLY_BIN=$ROOT/.build/debug/tally .venv/bin/python3 -m pytest -q -m cluster Tests/python

step "top-ups across three instances with faults, counted (short form of tools/topups/fleet.py)"
.venv/bin/python3 tools/topups/fleet.py --topups 2000 --binary "$ROOT/.build/debug/tally"

step "faults under load, counted: nothing lost, duplicated or invented (short form of tools/chaos/chaos.py)"
.venv/bin/python3 tools/chaos/chaos.py --short --binary "$ROOT/.build/debug/tally"

step "three instances behind HAProxy, one SIGKILLed mid-load; grpcio's client-side round robin"
TALLY_BIN=$ROOT/.build/debug/tally bash tools/scale/haproxy.sh
