#!/usr/bin/env node
// A client of any fibrpc procedure over JSON, in the RabbitMQ tutorial's style (amqp.node
// callback API), written from docs/wire.md alone.
//
// Usage: json_client.js QUEUE PROCEDURE JSON [PROCEDURE JSON ...]; one call after another, one
// line each: `PROCEDURE -> <the reply's JSON>`, or for an error reply (the `fibrpc-error`
// header) `PROCEDURE -> error <kind> <the body's JSON>`.
const amqp = require('amqplib/callback_api');
const { randomUUID } = require('crypto');

const [queue, ...calls] = process.argv.slice(2);
setTimeout(() => {
  console.error('no reply within 20 s');
  process.exit(2);
}, 20000).unref();

// Keys sorted, as Python's json.dumps(sort_keys=True) and the tests expect.
const sorted = (value) => JSON.stringify(value, (key, v) =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
    : v);

amqp.connect('amqp://127.0.0.1', (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    channel.assertQueue('', { exclusive: true }, (error2, q) => {
      if (error2) throw error2;
      let waiting = null;
      channel.consume(q.queue, (msg) => {
        if (waiting && msg.properties.correlationId === waiting.id) {
          const reply = JSON.parse(msg.content.toString());
          // An error reply is marked in a header, whatever its body.
          const error = (msg.properties.headers || {})['fibrpc-error'];
          if (error === undefined) {
            console.log('%s -> %s', waiting.procedure, sorted(reply));
          } else {
            console.log('%s -> error %s %s', waiting.procedure, error.toString(), sorted(reply));
          }
          waiting = null;
          next();
        }
      }, { noAck: true }, (error3) => {
        if (error3) throw error3;
        next();
      });
      function next() {
        if (calls.length < 2) {
          connection.close(() => process.exit(0));
          return;
        }
        const [procedure, request] = calls.splice(0, 2);
        waiting = { id: randomUUID(), procedure };
        channel.sendToQueue(queue, Buffer.from(request), {
          correlationId: waiting.id,
          replyTo: q.queue,
          contentType: 'application/json',
          type: procedure,
        });
      }
    });
  });
});
