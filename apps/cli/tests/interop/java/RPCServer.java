// The RabbitMQ tutorial's RPC server in Java, for interop tests with fibrpc.
//
// As today's tutorial servers: the request queue durable with `x-queue-type: quorum`,
// prefetch 1, decimal text both ways, the reply to `replyTo` with the request's correlation
// id, then the ack. Changes for the tests: the broker at 127.0.0.1, the queue from the command
// line, an iterative fib with BigInteger, and on SIGTERM it says how many it answered.
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DeliverCallback;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

public class RPCServer {
    private static BigInteger fib(int n) {
        BigInteger a = BigInteger.ZERO, b = BigInteger.ONE;
        for (int i = 0; i < n; i++) {
            BigInteger next = a.add(b);
            a = b;
            b = next;
        }
        return a;
    }

    public static void main(String[] argv) throws Exception {
        String queue = argv.length > 0 ? argv[0] : "rpc_queue";
        ConnectionFactory factory = new ConnectionFactory();
        factory.setHost("127.0.0.1");
        Connection connection = factory.newConnection();
        Channel channel = connection.createChannel();
        channel.queueDeclare(queue, true, false, false, Map.of("x-queue-type", "quorum"));
        channel.basicQos(1);
        AtomicLong answered = new AtomicLong();
        Runtime.getRuntime().addShutdownHook(new Thread(() ->
                System.out.println(" [x] Answered " + answered.get())));
        System.out.println(" [x] Awaiting RPC requests");

        DeliverCallback deliverCallback = (consumerTag, delivery) -> {
            AMQP.BasicProperties replyProps = new AMQP.BasicProperties.Builder()
                    .correlationId(delivery.getProperties().getCorrelationId())
                    .build();
            int n = Integer.parseInt(new String(delivery.getBody(), StandardCharsets.UTF_8));
            System.out.println(" [.] fib(" + n + ")");
            String response = fib(n).toString();
            channel.basicPublish("", delivery.getProperties().getReplyTo(), replyProps,
                    response.getBytes(StandardCharsets.UTF_8));
            channel.basicAck(delivery.getEnvelope().getDeliveryTag(), false);
            answered.incrementAndGet();
        };
        channel.basicConsume(queue, false, deliverCallback, consumerTag -> { });
    }
}
