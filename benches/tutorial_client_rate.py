"""Sequential calls per second of the RabbitMQ tutorial's Python client (pika), against
whatever server consumes QUEUE. Usage: tutorial_client_rate.py QUEUE CALLS N"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "apps", "cli", "tests", "interop"))
from tutorial_client import FibonacciRpcClient  # noqa: E402

queue, calls, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
client = FibonacciRpcClient(queue)
client.call(n)  # warm-up
started = time.perf_counter()
for _ in range(calls):
    client.call(n)
elapsed = time.perf_counter() - started
print("tutorial python client: %d sequential calls, %.0f calls/s, %.0f us per call" % (calls, calls / elapsed, elapsed / calls * 1e6))
