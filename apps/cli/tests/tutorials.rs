//! Servers and clients written as today's RabbitMQ tutorials are, in Python (pika), JavaScript
//! (amqplib) and Java (RabbitMQ's Java client), on one durable quorum queue with `fibrpc serve`
//! and `fibrpc call`: whichever declares the queue first, the other joins; calls from the
//! tutorial's client and from `fibrpc call`, with exclusive and direct reply-to, are answered
//! by both servers.

mod support;

use std::process::Command;

use support::broker::{Broker, Counts};
use support::*;

#[derive(Debug)]
enum Tutorial {
    Python,
    JavaScript,
    /// With the class path of the Java client.
    Java(String),
}

impl Tutorial {
    /// Runs the tutorial program `name` (its server or its client) with `args`.
    fn program(&self, name: &str, args: &[&str]) -> Command {
        let mut command = match self {
            Tutorial::Python => {
                let mut python = Command::new(python_with_pika());
                python.arg(interop_script(&format!("tutorial_{name}.py")));
                python
            }
            Tutorial::JavaScript => {
                let mut node = Command::new("node");
                node.env("NODE_PATH", node_modules_with_amqplib())
                    .arg(interop_script(&format!("js/rpc_{name}.js")));
                node
            }
            Tutorial::Java(classpath) => {
                let class = if name == "server" {
                    "RPCServer"
                } else {
                    "RPCClient"
                };
                let mut java = Command::new("java");
                java.args(["-cp", classpath.as_str()])
                    .arg(interop_script(&format!("java/{class}.java")));
                java
            }
        };
        command.args(args);
        command
    }

    fn server(&self, queue: &str) -> Process {
        let name = match self {
            Tutorial::Python => "server_quorum",
            _ => "server",
        };
        Process::start(self.program(name, &[queue]), "Awaiting RPC requests")
    }

    /// Calls fib(n) for each of `numbers`, one after another, with the tutorial's client.
    fn call(&self, queue: &str, direct: bool, numbers: &[u64]) {
        let numbers: Vec<String> = numbers.iter().map(u64::to_string).collect();
        let mut args: Vec<&str> = if direct { vec!["--direct"] } else { vec![] };
        args.push(queue);
        args.extend(numbers.iter().map(String::as_str));
        let output = run(self.program("client", &args));
        assert!(output.status.success(), "{self:?}: {}", stderr(&output));
        // Each prints ` [.] Got 55`, Java with quotes around the number.
        let got: Vec<String> = stdout(&output)
            .lines()
            .filter(|line| line.contains("Got"))
            .filter_map(|line| line.split_whitespace().last())
            .map(|value| value.trim_matches('\'').to_owned())
            .collect();
        let expected: Vec<String> = numbers
            .iter()
            .map(|n| fibrpc_domain::fib(n.parse().unwrap()).to_string())
            .collect();
        assert_eq!(got, expected, "{self:?}");
    }
}

const TUTORIAL_CALLS: u64 = 10;
const FIBRPC_CALLS: u64 = 40;

/// Calls from the tutorial's client and from `fibrpc call`, each with both kinds of reply-to.
/// `fibrpc call` sends the tutorial's decimal text, which is all a tutorial server reads.
fn call_both_ways(tutorial: &Tutorial, queue: &str) {
    let half = TUTORIAL_CALLS / 2;
    tutorial.call(queue, false, &(0..half).collect::<Vec<_>>());
    tutorial.call(queue, true, &(half..TUTORIAL_CALLS).collect::<Vec<_>>());
    for reply_to in ["exclusive", "direct"] {
        let numbers: Vec<u64> = (0..FIBRPC_CALLS / 2).map(|n| n * 7).collect();
        let mut call = fibrpc();
        call.args(["call", "--text", "--timeout", "20s", "--queue", queue])
            .args(["--reply-to", reply_to])
            .args(numbers.iter().map(u64::to_string));
        let output = run(call);
        assert!(output.status.success(), "{}", stderr(&output));
        let expected: String = numbers
            .iter()
            .map(|&n| format!("{}\n", fibrpc_domain::fib(n)))
            .collect();
        assert_eq!(stdout(&output), expected, "--reply-to {reply_to}");
    }
}

/// How many requests a tutorial server said it answered when it stopped.
fn answered_by(server: &mut Process) -> u64 {
    let line = server.wait_for_line("Answered");
    line.split_whitespace()
        .last()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary {line:?}"))
}

/// Starts both servers in the given order, calls, stops them, and checks that each answered
/// some of the calls and together all.
fn share_a_queue(tutorial: &Tutorial, fibrpc_first: bool) {
    let mut broker = Broker::open();
    let queue = unique_queue("tutorial");
    broker.clean_up(&queue);
    let (mut theirs, mut ours) = if fibrpc_first {
        // Declares the queue the tutorial server declares: its declare is then accepted.
        let ours = serve(&queue, &["--queue-type", "quorum"]);
        (tutorial.server(&queue), ours)
    } else {
        // No flags: the tutorial server's durable quorum queue is used as it is.
        let theirs = tutorial.server(&queue);
        (theirs, serve(&queue, &[]))
    };
    broker.wait_for(
        &queue,
        Counts {
            ready: 0,
            consumers: 2,
        },
    );
    call_both_ways(tutorial, &queue);
    theirs.signal("TERM");
    ours.signal("TERM");
    let (theirs, ours) = (answered_by(&mut theirs), replies_of(&mut ours));
    eprintln!("{tutorial:?} tutorial server answered {theirs}, fibrpc serve {ours}");
    assert_eq!(theirs + ours, TUTORIAL_CALLS + FIBRPC_CALLS);
    assert!(theirs > 0 && ours > 0, "one server did all the work");
}

#[test]
fn fibrpc_serve_joins_the_python_tutorial_server() {
    if rabbitmq_available() {
        share_a_queue(&Tutorial::Python, false);
    }
}

#[test]
fn the_python_tutorial_server_joins_fibrpc_serve() {
    if rabbitmq_available() {
        share_a_queue(&Tutorial::Python, true);
    }
}

#[test]
fn fibrpc_serve_joins_the_javascript_tutorial_server() {
    if rabbitmq_available() {
        share_a_queue(&Tutorial::JavaScript, false);
    }
}

#[test]
fn the_java_tutorial_server_joins_fibrpc_serve() {
    if !rabbitmq_available() {
        return;
    }
    if let Some(classpath) = java_classpath() {
        share_a_queue(&Tutorial::Java(classpath), true);
    }
}
