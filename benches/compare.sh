#!/usr/bin/env bash
# Measures, in one run, fibrpc against its outside references (docs/performance.md):
#   1. the domain against GMP (gmpy2): fib(1,000,000) computed and rendered to decimal;
#   2. sequential AMQP calls: fibrpc's client against the tutorial's Python client, both
#      calling the same `fibrpc serve`;
#   3. `fibrpc bench --baseline` over memory and AMQP at 1, 64 and 256 calls in flight.
# Needs RabbitMQ on 127.0.0.1:5672. Python packages go to a venv under target/.
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
$fibrpc bench --transport amqp --servers 0 --queue "$queue" --concurrency 1 --calls 2000 --warmup 200 | tail -1
kill $server; wait $server 2>/dev/null || true

for transport in memory amqp; do
  for c in 1 64 256; do
    calls=$([ "$c" = 1 ] && echo 3000 || echo 30000)
    [ "$transport" = memory ] && calls=$((calls * 10))
    echo "== $transport, $c in flight"
    $fibrpc bench --transport "$transport" --baseline --calls "$calls" --concurrency "$c" \
      --prefetch 256 --server-concurrency 256 | tail -3
  done
done
