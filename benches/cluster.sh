#!/usr/bin/env bash
# Throughput of `fibrpc bench` on one RabbitMQ node against the three-node cluster of
# scripts/rabbitmq-cluster.sh, with a classic and with a quorum request queue
# (docs/scaling.md). Indicative only: all four RabbitMQ nodes and fibrpc share this machine.
#
#   benches/cluster.sh [calls]     (default 20000; 2 clients, 2 servers, 64 calls in flight)
#
# "1 node" is the standalone broker on 127.0.0.1:5672 (a quorum queue there has one member);
# "3 nodes" is the cluster, every connection given the three addresses shuffled, so clients,
# servers and the queue's leader land on different nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${1:-20000}"
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

# CPU time (user + system, clock ticks) of the brokers' Erlang VMs: steadier than wall-clock
# figures on a shared machine, though the node on 5672 also serves other users.
broker_ticks() { # node...
  local node pid total=0
  for node in "$@"; do
    pid=$(rabbitmqctl -q -n "$node" eval 'os:getpid().' | tr -d '"')
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$total"
}

run() { # label url nodes kind [bench flags...]
  local label=$1 url=$2 nodes=$3 kind=$4
  shift 4
  local queue="fibrpc.bench.cluster.$kind.$$.$RANDOM" json before after
  json=$(mktemp)
  local node_list
  read -ra node_list <<<"$nodes"
  [ "$kind" = quorum ] && declare_quorum "$url" "${node_list[0]}" "$queue"
  before=$(broker_ticks "${node_list[@]}")
  "$fibrpc" bench --transport amqp --amqp-url "$url" "$@" --queue "$queue" --warmup 0 \
    --calls "$calls" --concurrency 64 --clients 2 --servers 2 --json "$json" >/dev/null
  after=$(broker_ticks "${node_list[@]}")
  rabbitmqctl -q -n "${node_list[0]}" delete_queue "$queue" >/dev/null 2>&1 || true
  python3 - "$label" "$kind" "$json" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
label, kind, path, ticks, hz = sys.argv[1:]
r = json.load(open(path))
cpu_us = int(ticks) / int(hz) * 1e6 / r["calls"]
print(f"| {label} | {kind} | {r['calls']} | {r['errors']} | {r['calls_per_sec']:.0f} | "
      f"{r['p50_us'] / 1000:.1f} | {r['p99_us'] / 1000:.1f} | {cpu_us:.0f} |")
PY
  rm -f "$json"
}

echo "| brokers | request queue | calls | errors | calls/s | p50 ms | p99 ms | broker CPU us/call |"
echo "|---|---|---|---|---|---|---|---|"
for kind in classic quorum; do
  run "1 node (5672)" "$single" rabbit@localhost "$kind"
  run "3 nodes, shuffled" "$cluster" "fibrpc1@localhost fibrpc2@localhost fibrpc3@localhost" \
    "$kind" --amqp-shuffle
done
