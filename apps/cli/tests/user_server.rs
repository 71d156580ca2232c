//! A user's server binary built on `fibrpc_app::serve`, driven by `fibrpc call` over RabbitMQ.
//!
//! This test binary is both: run by cargo, it starts itself again with `USER_SERVER` set, as
//! the user's server, then calls it with `fibrpc call` and stops it with SIGTERM. (No test
//! harness: the server's flags are the command line.)

mod support;

use std::process::{Command, ExitCode};

use support::*;

// The user's server, whole: the flags, variables and behaviour of `fibrpc serve`.
use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;

fn users_server() -> ExitCode {
    fibrpc_app::serve(Fib::service(Fibonacci::default()))
}
// The user's server ends here.

fn main() -> ExitCode {
    if std::env::var_os("USER_SERVER").is_some() {
        return users_server();
    }
    the_users_server_answers_fibrpc_call_and_stops_on_sigterm();
    the_users_server_is_at_most_15_lines();
    println!("user_server: 2 checks passed");
    ExitCode::SUCCESS
}

fn the_users_server_answers_fibrpc_call_and_stops_on_sigterm() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("user-server");
    let mut server = Command::new(std::env::current_exe().unwrap());
    server.env("USER_SERVER", "1").env_remove("AMQP_URL").args([
        "--queue",
        &queue,
        "--prefetch",
        "8",
    ]);
    let mut server = Process::start(server, "Awaiting RPC requests");
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "10", "30"]);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "55\n832040\n");
    server.signal("TERM");
    assert_eq!(replies_of(&mut server), 2);
    assert!(server.wait().success());
    delete_amqp_queues(&[&queue]);
}

/// The claim of issue 20: a user's server binary in at most 15 lines, imports included.
fn the_users_server_is_at_most_15_lines() {
    let source = include_str!("user_server.rs");
    let start = source.find("// The user's server, whole").unwrap();
    let end = source.find("// The user's server ends here.").unwrap();
    let lines = source[start..end]
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .count();
    assert!(lines <= 15, "the user's server takes {lines} lines");
}
