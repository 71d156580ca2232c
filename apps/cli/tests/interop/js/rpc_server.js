#!/usr/bin/env node
// The RabbitMQ tutorial's RPC server in JavaScript (amqp.node callback API), for interop tests.
//
// As today's tutorial servers: the request queue durable with `x-queue-type: quorum`,
// prefetch 1, decimal text both ways, the reply to `replyTo` with the request's correlation
// id, then the ack. Changes for the tests: the broker at 127.0.0.1, the queue from the command
// line, an iterative fib with BigInt, and on SIGTERM it says how many it answered and stops.
const amqp = require('amqplib/callback_api');

const queue = process.argv[2] || 'rpc_queue';
let answered = 0;

amqp.connect('amqp://127.0.0.1', (error0, connection) => {
  if (error0) throw error0;
  connection.createChannel((error1, channel) => {
    if (error1) throw error1;
    channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } }, (error2) => {
      if (error2) throw error2;
      channel.prefetch(1);
      console.log(' [x] Awaiting RPC requests');
      channel.consume(queue, (msg) => {
        const n = parseInt(msg.content.toString(), 10);
        console.log(' [.] fib(%d)', n);
        channel.sendToQueue(msg.properties.replyTo, Buffer.from(fibonacci(n).toString()), {
          correlationId: msg.properties.correlationId,
        });
        channel.ack(msg);
        answered += 1;
      });
    });
  });
  process.once('SIGTERM', () => {
    console.log(' [x] Answered %d', answered);
    connection.close(() => process.exit(0));
  });
});

function fibonacci(n) {
  let [a, b] = [0n, 1n];
  for (let i = 0; i < n; i += 1) [a, b] = [b, a + b];
  return a;
}
