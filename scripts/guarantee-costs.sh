#!/usr/bin/env bash
# What each of fibrpc's guarantees costs over RabbitMQ (docs/performance.md, "What each
# guarantee costs"): builds the release `fibrpc`, then runs `fibrpc bench --guarantee-costs`
# at 64 in flight and at 1, each one process with the bare lapin baseline and fibrpc with all
# guarantees on, each one off and all off, servers as separate processes, interleaved rounds.
# Prints the machine's load before each and the markdown tables. About 3 minutes (plus the build); every run
# is bounded by `timeout`.
# Usage: scripts/guarantee-costs.sh [ROUNDS (default 5)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
cargo build --release -q -p fibrpc
bench() { # concurrency calls
  echo "== $1 in flight, $rounds rounds, $2 calls per run; load: $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 240 target/release/fibrpc bench --transport amqp --server-process --guarantee-costs \
    --rounds "$rounds" --concurrency "$1" --calls "$2" --warmup 500 \
    | sed -n '/^== medians/,$p'
}
bench 64 20000
bench 1 3000
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
