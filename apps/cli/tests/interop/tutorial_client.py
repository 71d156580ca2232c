"""The RabbitMQ tutorial's RPC client, as published, for interop tests.

Changes from the tutorial: pika 1.x call signatures, the broker at 127.0.0.1, the queue and n
(one call after another for several) from the command line, `--direct` for RabbitMQ's direct
reply-to instead of the exclusive callback queue, and a deadline so a test can never hang on it.
"""
import sys
import time
import uuid

import pika


class FibonacciRpcClient(object):
    def __init__(self, queue, direct=False):
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=5672))
        self.channel = self.connection.channel()
        if direct:
            self.callback_queue = "amq.rabbitmq.reply-to"
        else:
            result = self.channel.queue_declare(queue="", exclusive=True)
            self.callback_queue = result.method.queue
        self.channel.basic_consume(queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True)
        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, n, deadline_s=20.0):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key=self.queue,
            properties=pika.BasicProperties(reply_to=self.callback_queue, correlation_id=self.corr_id),
            body=str(n),
        )
        give_up = time.monotonic() + deadline_s
        while self.response is None:
            if time.monotonic() > give_up:
                raise SystemExit("no reply within %.0f s" % deadline_s)
            self.connection.process_data_events(time_limit=0.1)
        return int(self.response)


if __name__ == "__main__":
    args = sys.argv[1:]
    direct = bool(args) and args[0] == "--direct"
    if direct:
        args = args[1:]
    queue = args[0] if args else "rpc_queue"
    numbers = [int(n) for n in args[1:]] or [30]
    fibonacci_rpc = FibonacciRpcClient(queue, direct)
    for n in numbers:
        print(" [x] Requesting fib(%d)" % n, flush=True)
        response = fibonacci_rpc.call(n)
        print(" [.] Got %r" % response, flush=True)
