#!/usr/bin/env node
// The RabbitMQ tutorial's RPC client in JavaScript (amqp.node callback API), for interop tests.
//
// As the tutorial: an exclusive server-named callback queue (or, with --direct, RabbitMQ's
// direct reply-to pseudo-queue, consumed on the channel that publishes), a fresh correlation id
// per call, decimal text. Changes for the tests: the broker at 127.0.0.1, the queue and the
// numbers from the command line (one call after another), a uuid for the correlation id, and
// a deadline so a test never hangs on it.
const amqp = require('amqplib/callback_api');
const { randomUUID } = require('crypto');

const args = process.argv.slice(2);
const direct = args[0] === '--direct';
const [queue, ...numbers] = direct ? args.slice(1) : args;
if (!queue || numbers.length === 0) {
  console.log('Usage: rpc_client.js [--direct] queue n...');
  process.exit(1);
}
setTimeout(() => {
  console.error('no reply within 20 s');
  process.exit(2);
}, 20000).unref();

amqp.connect('amqp://127.0.0.1', (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    const start = (replyTo) => {
      let waiting = null;
      channel.consume(replyTo, (msg) => {
        if (waiting && msg.properties.correlationId === waiting.id) {
          console.log(' [.] Got %s', msg.content.toString());
          waiting = null;
          next();
        }
      }, { noAck: true }, (error3) => {
        if (error3) throw error3;
        next();
      });
      function next() {
        if (numbers.length === 0) {
          connection.close(() => process.exit(0));
          return;
        }
        const n = parseInt(numbers.shift(), 10);
        waiting = { id: randomUUID() };
        console.log(' [x] Requesting fib(%d)', n);
        channel.sendToQueue(queue, Buffer.from(n.toString()), {
          correlationId: waiting.id,
          replyTo,
        });
      }
    };
    if (direct) {
      start('amq.rabbitmq.reply-to');
    } else {
      channel.assertQueue('', { exclusive: true }, (error2, q) => {
        if (error2) throw error2;
        start(q.queue);
      });
    }
  });
});
