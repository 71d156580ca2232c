#!/usr/bin/env bash
# Measures, in one run, fibrpc against its outside references (docs/performance.md):
#   1. the domain against GMP (gmpy2): fib(1,000,000) computed and rendered to decimal;
#   2. sequential AMQP calls: fibrpc's client against the tutorial's Python client, both
#      calling the same `fibrpc serve`;
#   3. `fibrpc bench --baseline` in interleaved rounds (baseline, fibrpc, ... 5 of each) at 1,
#      64 and 256 calls in flight: memory; AMQP with the servers in-process and as their own
#      processes (`--server-process`); NATS at 1 and 64. Each prints every round's ratios, the
#      medians, and CPU per call of client, server and broker; JSON and charts go to
#      target/bench/.
# Needs RabbitMQ on 127.0.0.1:5672 and NATS on 127.0.0.1:4222. Python packages go to a venv
# under target/. ROUNDS=N changes the number of rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import gmpy2, pika' 2>/dev/null || "$venv/bin/pip" install -q gmpy2 pika==1.3.2
cargo build -q --release -p fibrpc
fibrpc=target/release/fibrpc

echo "== domain vs GMP"
ours=$($fibrpc bench --domain --n 1000000 | head -1)
gmp=$("$venv/bin/python" benches/gmp_fib.py 1000000)
echo "$ours"; echo "$gmp"
awk -v a="$(echo "$ours" | grep -o '[0-9.]* ms' | head -1)" -v b="$(echo "$gmp" | grep -o '[0-9.]* ms' | head -1)" \
  'BEGIN { printf "ratio fibrpc / GMP: %.2fx\n", a / b }'
$fibrpc bench --domain --n 30 | tail -1

echo "== sequential calls over AMQP: fibrpc client vs the tutorial's Python client, same server"
queue="fibrpc.bench.sequential.$$"
$fibrpc serve --queue "$queue" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 1
"$venv/bin/python" benches/tutorial_client_rate.py "$queue" 2000 30
$fibrpc bench --transport amqp --servers 0 --queue "$queue" --concurrency 1 --calls 2000 --warmup 200 | grep '^fibrpc' 
kill $server; wait $server 2>/dev/null || true

rounds=${ROUNDS:-5}
out=target/bench
mkdir -p "$out"
bench() { $fibrpc bench --baseline --rounds "$rounds" "$@"; }
# The closing table of medians: its header and one line per level.
medians() { sed -n '/^in flight/,$p'; }

echo "== memory, in-process"
bench --transport memory --concurrency 1,64,256 --calls 100000 --json "$out/memory.json" | medians

for placement in in-process process; do
  flag=$([ "$placement" = process ] && echo --server-process || true)
  echo "== amqp, servers $placement, 1 in flight"
  bench --transport amqp $flag --concurrency 1 --calls 3000 \
    --json "$out/amqp-$placement-1.json" | medians
  echo "== amqp, servers $placement, 64 and 256 in flight"
  bench --transport amqp $flag --concurrency 64,256 --calls 20000 \
    --json "$out/amqp-$placement-64-256.json" | medians
done

echo "== nats, servers process, 1 and 64 in flight"
bench --transport nats --server-process --concurrency 1,64 --calls 5000 \
  --json "$out/nats-process.json" | medians

echo "== charts (docs/img)"
bench --transport amqp --server-process --concurrency 1,16,64,256 --calls 5000 \
  --plot docs/img/amqp-sweep.svg | medians
bench --transport amqp --server-process --concurrency 64 --calls 20000 \
  --plot docs/img/amqp-latency-64.svg | medians
