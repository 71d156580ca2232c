"""GMP's fib(n) and its decimal digits, best of several runs (gmpy2). Usage: gmp_fib.py N"""
import sys
import time

import gmpy2

n = int(sys.argv[1])
best = float("inf")
for _ in range(7):
    started = time.perf_counter()
    digits = gmpy2.fib(n).digits()
    best = min(best, time.perf_counter() - started)
print("gmp fib(%d) computed and rendered: best of 7 %.3f ms (%d digits)" % (n, best * 1e3, len(digits)))
