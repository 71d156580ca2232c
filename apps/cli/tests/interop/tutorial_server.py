"""The RabbitMQ tutorial's RPC server, as published, for interop tests.

Changes from the tutorial: pika 1.x call signatures, the broker at 127.0.0.1, the queue from
the command line, an iterative fib (the tutorial's recursive one is exponential), and it
stops by itself after `limit` requests or `idle_s` seconds without one.
"""
import sys

import pika


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def main(queue, limit, idle_s):
    connection = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=5672))
    channel = connection.channel()
    channel.queue_declare(queue=queue)
    channel.basic_qos(prefetch_count=1)
    served = 0
    print(" [x] Awaiting RPC requests", flush=True)
    for method, props, body in channel.consume(queue, inactivity_timeout=idle_s):
        if method is None:
            break
        n = int(body)
        print(" [.] fib(%s)" % n, flush=True)
        response = fib(n)
        channel.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(response),
        )
        channel.basic_ack(delivery_tag=method.delivery_tag)
        served += 1
        if served >= limit:
            break
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rpc_queue",
         int(sys.argv[2]) if len(sys.argv) > 2 else 1,
         float(sys.argv[3]) if len(sys.argv) > 3 else 30.0)
