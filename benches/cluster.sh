#!/usr/bin/env bash
# Throughput of `fibrpc bench` on one RabbitMQ node against the three-node cluster of
# scripts/rabbitmq-cluster.sh, with a classic and with a quorum request queue
# (docs/scaling.md). Indicative only: all four RabbitMQ nodes and fibrpc share this machine.
#
#   benches/cluster.sh [calls] [rounds]   (default 10000 calls x 3 rounds, medians shown;
#                                          2 clients, 2 servers in-process, 64 calls in flight)
#
# "1 node" is the standalone broker on 127.0.0.1:5672 (a quorum queue there has one member);
# "3 nodes" is the cluster: either every connection on node 1 (the first address; the queue
# or its leader there too), or every connection given the three addresses shuffled, so that
# clients, servers and the queue land on different nodes. Broker CPU per call (from /proc,
# all nodes summed; `fibrpc bench` finds them by their ports) is steadier than wall-clock
# figures here, though the node on 5672 also serves other users.
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${1:-10000}"
rounds="${2:-3}"
cargo build -q --release -p fibrpc
fibrpc=target/release/fibrpc
bash scripts/rabbitmq-cluster.sh up >/dev/null
single="amqp://guest:guest@127.0.0.1:5672/%2f"
cluster=$(bash scripts/rabbitmq-cluster.sh urls)

queue_exists() { # node queue
  rabbitmqctl -q -n "$1" list_queues --no-table-headers name 2>/dev/null | grep -qx "$2"
}

# A quorum queue, declared by `fibrpc serve --queue-type quorum` (which then stops): the
# bench uses an existing queue as it is.
declare_quorum() { # url node queue
  "$fibrpc" serve --amqp-url "$1" --queue "$3" --queue-type quorum >/dev/null 2>&1 &
  local server=$!
  for _ in $(seq 1 100); do queue_exists "$2" "$3" && break; sleep 0.1; done
  kill "$server"
  wait "$server" 2>/dev/null || true
  queue_exists "$2" "$3" || { echo "could not declare the quorum queue $3" >&2; exit 1; }
}

run() { # label url node kind [bench flags...]
  local label=$1 url=$2 node=$3 kind=$4
  shift 4
  local queue="fibrpc.bench.cluster.$kind.$$.$RANDOM" json
  json=$(mktemp)
  [ "$kind" = quorum ] && declare_quorum "$url" "$node" "$queue"
  "$fibrpc" bench --transport amqp --amqp-url "$url" "$@" --queue "$queue" --rounds "$rounds" \
    --calls "$calls" --concurrency 64 --clients 2 --servers 2 --json "$json" >/dev/null
  rabbitmqctl -q -n "$node" delete_queue "$queue" >/dev/null 2>&1 || true
  python3 - "$label" "$kind" "$json" <<'PY'
import json, statistics, sys
label, kind, path = sys.argv[1:]
r = json.load(open(path))
level = r["levels"][0]
runs = [run["fibrpc"] for run in r["runs"]]
p99 = statistics.median(run["p99_us"] for run in runs)
broker = statistics.median(run["cpu"]["broker_us"] or 0 for run in runs)
print(f"| {label} | {kind} | {r['calls']} | {r['errors']} | {level['fibrpc_calls_per_sec']:.0f} | "
      f"{level['fibrpc_p50_us'] / 1000:.1f} | {p99 / 1000:.1f} | {broker:.0f} |")
PY
  rm -f "$json"
}

echo "| brokers | request queue | calls | errors | calls/s | p50 ms | p99 ms | broker CPU µs/call |"
echo "|---|---|---|---|---|---|---|---|"
for kind in classic quorum; do
  run "1 node (5672)" "$single" rabbit@localhost "$kind"
  run "3 nodes, all on node 1" "$cluster" fibrpc1@localhost "$kind"
  run "3 nodes, shuffled" "$cluster" fibrpc1@localhost "$kind" --amqp-shuffle
done
