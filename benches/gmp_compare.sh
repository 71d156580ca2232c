#!/usr/bin/env bash
# The domain against GMP, in one run on one machine (docs/performance.md):
#   - fib(N) computed and rendered to decimal (default N = 1,000,000): gmpy2 `fib(N).digits()`
#     against `fibrpc bench --domain --n N`, best of RUNS each, and the ratio ours / GMP;
#   - fib(30) per call from a tight loop (ours should be well under 1 us).
# Needs python3 with venv and pip reaching PyPI; gmpy2 goes to a venv under target/.
# Usage: benches/gmp_compare.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
runs=${2:-7}
venv=target/bench-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import gmpy2' 2>/dev/null || "$venv/bin/pip" install -q 'gmpy2>=2.1'
# Up to date already after a release build: then this costs nothing.
cargo build -q --release -p fibrpc
fibrpc=target/release/fibrpc

ours=$("$fibrpc" bench --domain --n "$n")
gmp=$("$venv/bin/python" benches/gmp_fib.py "$n" "$runs")
echo "$ours"
echo "$gmp"
# The milliseconds on the line that says WHAT.
ms() { grep "$2" <<<"$1" | grep -o '[0-9.]* ms' | head -1 | cut -d' ' -f1; }
for what in "computed and rendered" "computed only"; do
  awk -v a="$(ms "$ours" "$what")" -v b="$(ms "$gmp" "$what")" -v n="$n" -v what="$what" \
    'BEGIN { printf "ratio fib(%d) %s, ours / GMP: %.2fx (lower is better)\n", n, what, a / b }'
done
