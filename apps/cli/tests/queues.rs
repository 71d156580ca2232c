//! `fibrpc serve` on the queue it is given, against the real RabbitMQ: on a queue another
//! program declared, across a killed server, with a delivery limit for a request that keeps
//! killing its servers, and with one line for each error. Side by side with the tutorials'
//! servers: `tutorials.rs`.

mod support;

use support::broker::{number, text, Broker, Counts, Value};
use support::*;

fn quorum() -> (&'static str, Value) {
    ("x-queue-type", text("quorum"))
}

#[test]
fn a_quorum_queue_declared_by_another_program_needs_no_flags() {
    if !rabbitmq_available() {
        return;
    }
    let mut broker = Broker::open();
    let queue = unique_queue("predeclared");
    broker.declare(
        &queue,
        true,
        &[
            quorum(),
            ("x-delivery-limit", number(5)),
            ("x-dead-letter-exchange", text("fibrpc.cli-test.nowhere")),
            ("x-max-length", number(10_000)),
            ("x-message-ttl", number(600_000)),
        ],
    );
    let mut server = serve(&queue, &[]);
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "30", "100"]);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "832040\n354224848179261915075\n");
    server.signal("TERM");
    assert_eq!(replies_of(&mut server), 2);
}

#[test]
fn requests_waiting_in_a_quorum_queue_outlive_a_killed_server() {
    if !rabbitmq_available() {
        return;
    }
    const CALLS: u32 = 20;
    const PREFETCH: u32 = 4;
    let mut broker = Broker::open();
    let queue = unique_queue("killed");
    broker.clean_up(&queue);
    let mut doomed = serve(
        &queue,
        &[
            "--queue-type",
            "quorum",
            "--prefetch",
            &PREFETCH.to_string(),
        ],
    );
    // Frozen, it holds what the broker already sent it and takes nothing more.
    doomed.signal("STOP");
    let numbers: Vec<String> = (0..CALLS).map(|n| (n * 11).to_string()).collect();
    let mut call = fibrpc();
    call.args(["call", "--timeout", "25s", "--queue", &queue])
        .args(&numbers);
    let caller = std::thread::spawn(move || run(call));
    broker.wait_for(
        &queue,
        Counts {
            ready: CALLS - PREFETCH,
            consumers: 1,
        },
    );
    doomed.signal("KILL");
    assert!(!doomed.wait().success());
    // Every request now waits in the queue, the ones the dead server held among them.
    broker.wait_for(
        &queue,
        Counts {
            ready: CALLS,
            consumers: 0,
        },
    );
    let mut next = serve(&queue, &[]);
    let output = caller.join().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let expected: String = (0..u64::from(CALLS))
        .map(|n| format!("{}\n", fibrpc_domain::fib(n * 11)))
        .collect();
    assert_eq!(stdout(&output), expected);
    next.signal("TERM");
    assert_eq!(replies_of(&mut next), u64::from(CALLS));
}

#[test]
fn a_request_that_keeps_killing_its_servers_ends_in_the_dead_letter_queue() {
    if !rabbitmq_available() {
        return;
    }
    let mut broker = Broker::open();
    let queue = unique_queue("poison");
    let (exchange, dead) = (unique_queue("poison-dlx"), unique_queue("poison-dead"));
    broker.dead_letter_target(&exchange, &dead);
    broker.clean_up(&queue);
    let flags = [
        "--queue-type",
        "quorum",
        "--dead-letter-exchange",
        &exchange,
        "--delivery-limit",
        "1",
        "--prefetch",
        "1",
    ];
    let holding = |consumers| Counts {
        ready: 0,
        consumers,
    };
    // Each server is frozen while it holds the request, then killed: as if the request
    // crashed it. The broker counts each return against the limit.
    let mut first = serve(&queue, &flags);
    first.signal("STOP");
    broker.publish(&queue, "30");
    broker.wait_for(&queue, holding(1));
    let mut second = serve(&queue, &[]);
    second.signal("STOP");
    broker.wait_for(&queue, holding(2));
    first.signal("KILL");
    first.wait();
    // Returned once (within the limit of 1) and delivered again, to the second server.
    broker.wait_for(&queue, holding(1));
    assert_eq!(broker.counts(&dead).ready, 0);
    second.signal("KILL");
    second.wait();
    // Returned a second time: past the limit, dead-lettered instead of delivered again.
    broker.wait_for(
        &dead,
        Counts {
            ready: 1,
            consumers: 0,
        },
    );
    assert_eq!(broker.counts(&queue), holding(0));
}

#[test]
fn a_caller_declares_no_request_queue() {
    if !rabbitmq_available() {
        return;
    }
    let broker = Broker::open();
    let queue = unique_queue("nobody-serves");
    for reply_to in ["exclusive", "direct"] {
        let mut call = fibrpc();
        call.args(["call", "--queue", &queue, "--reply-to", reply_to, "30"]);
        let output = run(call);
        assert!(!output.status.success());
        assert!(stderr(&output).contains("no such queue"), "{reply_to}");
    }
    assert!(!broker.exists(&queue), "a caller declared {queue}");
}

#[test]
fn a_failing_serve_prints_one_error_line_and_no_lapin_log() {
    if !rabbitmq_available() {
        return;
    }
    // RabbitMQ reserves `amq.` names: the look finds nothing, the declare is refused, and each
    // closes its channel (which lapin logs at ERROR unless filtered).
    let queue = format!("amq.{}", unique_queue("reserved"));
    let mut serve = fibrpc();
    serve.args(["serve", "--queue", &queue]);
    let output = run(serve);
    assert!(!output.status.success());
    let message = stderr(&output);
    let not_info: Vec<&str> = message
        .lines()
        .filter(|line| !line.contains(" INFO "))
        .collect();
    assert_eq!(not_info.len(), 1, "{message}");
    assert!(not_info[0].starts_with("fibrpc: "), "{message}");
    assert!(not_info[0].contains("ACCESS_REFUSED"), "{message}");
    assert!(!message.contains("lapin"), "{message}");
}

#[test]
fn bad_queue_flags_are_one_line_errors_before_connecting() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--delivery-limit", "3"],
            "--delivery-limit needs --queue-type quorum",
        ),
        (
            &[
                "--queue-type",
                "classic",
                "--durable",
                "--delivery-limit",
                "3",
            ],
            "--delivery-limit needs --queue-type quorum",
        ),
        (
            &["--queue-type", "quorum", "--dead-letter-exchange", ""],
            "--dead-letter-exchange needs a name",
        ),
        (
            &["--transport", "nats", "--queue-type", "quorum", "--durable"],
            "--queue-type, --durable apply only to --transport amqp",
        ),
    ];
    for (flags, expected) in cases {
        let mut serve = fibrpc();
        // Nothing listens there: an error about connecting would mean the flags were let by.
        serve
            .args(["serve", "--amqp-url", "amqp://127.0.0.1:1/%2f"])
            .args(["--nats-url", "nats://127.0.0.1:1"])
            .args(flags);
        let output = run(serve);
        assert!(!output.status.success(), "{flags:?}");
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{flags:?}: {message}");
        assert!(message.contains(expected), "{flags:?}: {message}");
    }
}

#[test]
fn serve_help_shows_the_queue_flags() {
    let mut help = fibrpc();
    help.args(["serve", "--help"]);
    let output = run(help);
    assert!(output.status.success());
    let text = stdout(&output);
    for flag in [
        "--queue-type <TYPE>",
        "--durable",
        "--dead-letter-exchange <EXCHANGE>",
        "--delivery-limit <N>",
    ] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}
