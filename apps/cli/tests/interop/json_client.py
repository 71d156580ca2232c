"""A client of any fibrpc procedure over JSON, in the RabbitMQ tutorial's style (pika 1.x),
written from docs/wire.md alone.

Usage: json_client.py QUEUE PROCEDURE JSON [PROCEDURE JSON ...]; one call after another, one
line each: `PROCEDURE -> <the reply's JSON>`, or for an error reply (the `fibrpc-error`
header) `PROCEDURE -> error <kind> <the body's JSON>`.
"""
import json
import sys
import time
import uuid

import pika


class JsonRpcClient(object):
    def __init__(self, queue):
        self.queue = queue
        self.connection = pika.BlockingConnection(pika.ConnectionParameters(host="127.0.0.1", port=5672))
        self.channel = self.connection.channel()
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True)
        self.response = None
        self.corr_id = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = (props, body)

    def call(self, procedure, request, deadline_s=20.0):
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key=self.queue,
            properties=pika.BasicProperties(
                reply_to=self.callback_queue,
                correlation_id=self.corr_id,
                content_type="application/json",
                type=procedure,
            ),
            body=json.dumps(request),
        )
        give_up = time.monotonic() + deadline_s
        while self.response is None:
            if time.monotonic() > give_up:
                raise SystemExit("no reply within %.0f s" % deadline_s)
            self.connection.process_data_events(time_limit=0.1)
        props, body = self.response
        # An error reply is marked in a header, whatever its body.
        error = (props.headers or {}).get("fibrpc-error")
        if isinstance(error, bytes):
            error = error.decode()
        return error, json.loads(body)


def compact(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


if __name__ == "__main__":
    queue, calls = sys.argv[1], sys.argv[2:]
    client = JsonRpcClient(queue)
    for procedure, request in zip(calls[::2], calls[1::2]):
        error, reply = client.call(procedure, json.loads(request))
        if error is None:
            print("%s -> %s" % (procedure, compact(reply)), flush=True)
        else:
            print("%s -> error %s %s" % (procedure, error, compact(reply)), flush=True)
