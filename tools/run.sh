#!/usr/bin/env bash
# Runs Tally on a fresh machine of this kind: installs the Debian packages, starts a private
# PostgreSQL and Redis under .tally/ (tools/services.sh), builds a release binary and serves
# (the server applies pending migrations at start). Extra arguments go to `tally serve`,
# e.g. `tools/run.sh --port 50051 --bench-echo`. Stop with Ctrl-C (graceful shutdown);
# `bash tools/services.sh stop` stops the databases.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/install-deps.sh
bash tools/services.sh start
set -a; source .tally/services.env; set +a
swift build -c release --product tally
exec .build/release/tally serve "$@"
