// The RabbitMQ tutorial's RPC client in Java, for interop tests with fibrpc.
//
// As the tutorial: an exclusive server-named callback queue (or, with --direct, RabbitMQ's
// direct reply-to pseudo-queue), a uuid correlation id per call, decimal text, the reply
// awaited on a CompletableFuture. Changes for the tests: the broker at 127.0.0.1, the queue and
// the numbers from the command line, and a deadline per call.
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

public class RPCClient implements AutoCloseable {
    private final Connection connection;
    private final Channel channel;
    private final String requestQueue;
    private final boolean direct;

    public RPCClient(String requestQueue, boolean direct) throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setHost("127.0.0.1");
        this.connection = factory.newConnection();
        this.channel = connection.createChannel();
        this.requestQueue = requestQueue;
        this.direct = direct;
    }

    public String call(String message) throws Exception {
        final String corrId = UUID.randomUUID().toString();
        String replyQueueName = direct ? "amq.rabbitmq.reply-to" : channel.queueDeclare().getQueue();
        final CompletableFuture<String> response = new CompletableFuture<>();
        String ctag = channel.basicConsume(replyQueueName, true, (consumerTag, delivery) -> {
            if (delivery.getProperties().getCorrelationId().equals(corrId)) {
                response.complete(new String(delivery.getBody(), StandardCharsets.UTF_8));
            }
        }, consumerTag -> { });
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .correlationId(corrId)
                .replyTo(replyQueueName)
                .build();
        channel.basicPublish("", requestQueue, props, message.getBytes(StandardCharsets.UTF_8));
        String result = response.get(20, TimeUnit.SECONDS);
        channel.basicCancel(ctag);
        return result;
    }

    public void close() throws Exception {
        connection.close();
    }

    public static void main(String[] argv) throws Exception {
        boolean direct = argv.length > 0 && argv[0].equals("--direct");
        int first = direct ? 1 : 0;
        try (RPCClient fibonacciRpc = new RPCClient(argv[first], direct)) {
            for (int i = first + 1; i < argv.length; i++) {
                System.out.println(" [x] Requesting fib(" + argv[i] + ")");
                System.out.println(" [.] Got '" + fibonacciRpc.call(argv[i]) + "'");
            }
        }
    }
}
