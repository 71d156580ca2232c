//! Held requests: they stay with a live consumer however long it holds them, and reach
//! another when its process is killed outright (no `Drop` runs).

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::*;

/// Set in the child process of the process-death check: the queue whose requests it takes
/// and holds until it is killed.
pub const HOLD_QUEUE_ENV: &str = "FIBRPC_CONFORMANCE_HOLD_QUEUE";

/// What the child prints once it holds its requests.
const HOLDING: &str = "fibrpc-conformance: holding the requests";

/// Requests the child holds.
const HELD: u16 = 3;

/// The path of a test inside its test binary, to run it alone in a child process. The
/// `contract_tests!` macro makes it from `module_path!()` where it expands.
#[derive(Debug, Clone, Copy)]
pub struct TestPath {
    pub module: &'static str,
    pub name: &'static str,
}

impl TestPath {
    /// The filter libtest matches with `--exact`: the module path without the crate's name.
    fn filter(self) -> String {
        match self.module.split_once("::") {
            Some((_, modules)) => format!("{modules}::{}", self.name),
            None => self.name.to_owned(),
        }
    }
}

/// `Settle`: "a process killed outright runs no `Drop` at all, so the broker-side path is the
/// one that counts". A consumer in a child process (this test binary, running this test
/// alone) takes 3 requests and holds them; while it lives, another consumer gets none; once it
/// is killed with SIGKILL, the other gets all 3, redelivered, within the factory's
/// `redelivery_timeout` plus [`SLACK`].
pub async fn requests_of_a_killed_process_are_delivered_again(
    factory: &dyn TransportFactory,
    test: TestPath,
) {
    if let Ok(queue) = std::env::var(HOLD_QUEUE_ENV) {
        return hold_until_killed(factory, &queue).await;
    }
    let check = "requests_of_a_killed_process_are_delivered_again";
    if skipped(factory, check, Guarantee::RedeliveryAfterProcessDeath) {
        return;
    }
    let queue = queue(factory, "killed").await;
    let connection = connect(factory).await;
    for i in 0..HELD {
        send(&connection, &queue, request(&i.to_string())).await;
    }
    let mut child = holder(test, &queue);
    within(
        "the child process to take the requests",
        holding(&mut child, test),
    )
    .await;
    let mut stream = consume(&connection, &queue, HELD).await;
    let why = "a request held by a live consumer went to another";
    nothing_comes_back(factory, &mut stream, why).await;

    child.kill().await.expect("cannot kill the child process");
    let killed = Instant::now();
    let bound = factory.redelivery_timeout() + SLACK;
    let mut back = HashSet::new();
    while back.len() < usize::from(HELD) {
        let Ok(outcome) =
            tokio::time::timeout_at((killed + bound).into(), stream.next_request()).await
        else {
            panic!(
                "{} of {HELD} requests of the killed consumer came back within {bound:?} (the \
                 declared redelivery timeout plus {SLACK:?})",
                back.len()
            );
        };
        let request = outcome.expect("the stream failed");
        assert!(request.redelivered, "a second delivery must say so");
        assert!(
            back.insert(request.envelope.body.clone()),
            "handed out twice"
        );
        settle(request.ack()).await;
    }
    nothing_comes_back(factory, &mut stream, "an acknowledged request came back").await;
    crate::delete_queue(factory, &queue).await;
}

/// Runs `test` alone in a child process of this test binary, as the holder of `queue`'s
/// requests. Killed if the parent's test fails first.
fn holder(test: TestPath, queue: &str) -> Child {
    let binary = std::env::current_exe().expect("cannot find this test binary");
    Command::new(binary)
        .args([
            &test.filter(),
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HOLD_QUEUE_ENV, queue)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start the child process")
}

/// Waits for the child to say it holds its requests.
async fn holding(child: &mut Child, test: TestPath) {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .expect("cannot read the child's output")
    {
        if line.contains(HOLDING) {
            return;
        }
    }
    panic!(
        "the child process (this test binary, `{} --exact`) ended before it held its requests: \
         its stderr is above; the factory must build there too, from the environment",
        test.filter()
    );
}

/// The child's part: take the requests, say so, and hold them until killed. Never returns:
/// should the parent not kill it (it failed, or its end of stdin closed), the child exits at
/// once, without running a single `Drop`, as a killed process would.
async fn hold_until_killed(factory: &dyn TransportFactory, queue: &str) {
    let connection = connect(factory).await;
    let mut stream = consume(&connection, queue, HELD).await;
    let mut held = Vec::new();
    for _ in 0..HELD {
        held.push(next(&mut stream).await);
    }
    println!("{HOLDING}");
    let parent_gone = tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
    });
    let _ = tokio::time::timeout(LIMIT * 3, parent_gone).await;
    std::process::exit(2);
}

/// `Settle`: "while it is held and its consumer lives, a request MUST NOT be delivered to
/// another consumer, however long it is held". One consumer holds a request for twice the
/// factory's `redelivery_timeout` (at least [`QUIET`]) while a consumer on another connection
/// waits: it gets nothing, nor after the first acknowledges.
pub async fn held_requests_stay_with_their_consumer(factory: &dyn TransportFactory) {
    let check = "held_requests_stay_with_their_consumer";
    if skipped(factory, check, Guarantee::HeldRequestsStayHeld) {
        return;
    }
    let queue = queue(factory, "held").await;
    let (one, two) = (connect(factory).await, connect(factory).await);
    let mut first = send_then_consume(factory, (&one, &one), &queue, 1, [request("held")]).await;
    let held = next(&mut first).await;
    let mut second = consume(&two, &queue, 1).await;
    // Not synchronisation: how long the request is held is what is under test.
    let hold = (factory.redelivery_timeout() * 2).max(QUIET);
    if let Ok(outcome) = tokio::time::timeout(hold, second.next_request()).await {
        panic!("a request held {hold:?} by a live consumer went to another: {outcome:?}");
    }
    settle(held.ack()).await;
    nothing_comes_back(factory, &mut second, "an acknowledged request came back").await;
    crate::delete_queue(factory, &queue).await;
}
