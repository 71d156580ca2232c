"""A server of the procedure `text.count` over JSON, in the RabbitMQ tutorial's style (pika
1.x), written from docs/wire.md alone: a request names its procedure in `type`, its body is
the request's JSON; the reply goes to `reply_to` with the request's `correlation_id`, its body
the response's JSON, and an error reply carries the `fibrpc-error` headers.

Usage: json_server.py QUEUE. Prints "ready" once it consumes, and serves until killed.
"""
import json
import sys

import pika


def text_count(text):
    return {"lines": len(text.splitlines()), "words": len(text.split()), "chars": len(text)}


def on_request(ch, method, props, body):
    if props.type == "text.count" and props.content_type == "application/json":
        reply, headers = json.dumps(text_count(json.loads(body))), None
    else:
        message = 'no procedure named "%s" on this server' % props.type
        reply = json.dumps({"kind": "unknown-procedure", "message": message, "name": props.type})
        headers = {"fibrpc-error": "unknown-procedure", "fibrpc-error-message": message}
    ch.basic_publish(exchange="", routing_key=props.reply_to, body=reply,
                     properties=pika.BasicProperties(correlation_id=props.correlation_id,
                                                     content_type="application/json", headers=headers))
    ch.basic_ack(delivery_tag=method.delivery_tag)


connection = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=5672))
channel = connection.channel()
channel.queue_declare(queue=sys.argv[1])
channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue=sys.argv[1], on_message_callback=on_request)
print("ready", flush=True)
channel.start_consuming()
