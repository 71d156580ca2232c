"""GMP's fib(n) and its decimal digits (gmpy2), best of several runs, then gmpy2.fib(30) per
call from a tight loop. Usage: gmp_fib.py N [RUNS]

The first line has the same form as `fibrpc bench --domain`'s, so benches/gmp_compare.sh can
read both the same way. The fib(30) figure includes the Python interpreter's call overhead,
which dwarfs GMP's own work at that size: it is a reference, not a fair comparison."""
import sys
import time

import gmpy2

n = int(sys.argv[1])
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
best = computed_best = float("inf")
digits = ""
for _ in range(runs):
    started = time.perf_counter()
    value = gmpy2.fib(n)
    computed_best = min(computed_best, time.perf_counter() - started)
    digits = value.digits()
    best = min(best, time.perf_counter() - started)
print("gmp fib(%d) computed and rendered: best of %d %.3f ms (%d digits)" % (n, runs, best * 1e3, len(digits)))
print("gmp fib(%d) computed only: best of %d %.3f ms" % (n, runs, computed_best * 1e3))

repeats = 200_000
fib = gmpy2.fib
started = time.perf_counter()
for _ in range(repeats):
    fib(30)
computed = (time.perf_counter() - started) / repeats
started = time.perf_counter()
for _ in range(repeats):
    fib(30).digits()
rendered = (time.perf_counter() - started) / repeats
print("gmp fib(30) computed only (from Python): %.0f ns per call" % (computed * 1e9))
print("gmp fib(30) computed and rendered (from Python): %.0f ns per call" % (rendered * 1e9))
