"""An RPC server written as today's RabbitMQ tutorial servers are, for interop tests.

As the tutorials now have it: the request queue declared durable with `x-queue-type: quorum`,
prefetch 1, the request and the reply in decimal text, the reply sent to `reply_to` with the
request's correlation id, then the ack. Changes for the tests: the broker at 127.0.0.1, the
queue from the command line, an iterative fib, and on SIGTERM (or after `idle_s` seconds
without a request) it stops and says how many requests it answered.
"""
import signal
import sys

import pika

stopping = False


def stop(_signum, _frame):
    global stopping
    stopping = True


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main(queue, idle_s):
    signal.signal(signal.SIGTERM, stop)
    connection = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=5672))
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_qos(prefetch_count=1)
    answered = 0
    idle = 0.0
    print(" [x] Awaiting RPC requests", flush=True)
    # A short inactivity timeout so that SIGTERM is seen promptly.
    for method, props, body in channel.consume(queue, inactivity_timeout=0.1):
        if stopping:
            if method is not None:
                channel.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
            break
        if method is None:
            idle += 0.1
            if idle >= idle_s:
                break
            continue
        idle = 0.0
        n = int(body)
        print(" [.] fib(%s)" % n, flush=True)
        channel.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(fib(n)),
        )
        channel.basic_ack(delivery_tag=method.delivery_tag)
        answered += 1
    channel.cancel()
    connection.close()
    print(" [x] Answered %d" % answered, flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rpc_queue",
         float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
