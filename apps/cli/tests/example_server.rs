//! The example's server (`cargo run --example services -- serve`: fib and text statistics on
//! `fibrpc_app`'s server entry point) called over JSON by code that knows none of its types:
//! `fibrpc call --procedure NAME --json VALUE`, and clients in the tutorials' style in Python
//! (pika) and JavaScript (amqplib), written from docs/wire.md.
//!
//! This test binary is both: run by cargo, it starts itself again with `EXAMPLE_SERVER` set
//! as the example's server (the same service; the example's own binary is not built for this
//! crate's tests), calls it, and stops it with SIGTERM. (No test harness: the server's flags
//! are the command line.)

mod support;

use std::process::{Command, ExitCode};

use support::*;

/// `text.count` of a text above the example's bound of 1,000 characters.
fn too_long() -> String {
    format!("\"{}\"", "word ".repeat(400))
}

const COUNTS: &str = r#"{"lines":1,"words":3,"chars":5}"#;

fn main() -> ExitCode {
    if std::env::var_os("EXAMPLE_SERVER").is_some() {
        return fibrpc_app::serve(fibrpc_examples::session::service());
    }
    if !rabbitmq_available() {
        return ExitCode::SUCCESS;
    }
    let queue = unique_queue("example-server");
    let mut server = Command::new(std::env::current_exe().unwrap());
    server
        .env("EXAMPLE_SERVER", "1")
        .env_remove("AMQP_URL")
        .args(["--queue", &queue]);
    let mut server = Process::start(server, "Awaiting RPC requests");

    fibrpc_call_prints_the_json_reply(&queue);
    fibrpc_call_fails_in_one_line(&queue);
    clients_in_other_languages_call_over_json(&queue);

    server.signal("TERM");
    assert!(server.wait().success());
    delete_amqp_queues(&[&queue]);
    println!("example_server: 3 checks passed");
    ExitCode::SUCCESS
}

fn call(queue: &str, procedure: &str, json: &str) -> std::process::Output {
    let mut call = fibrpc();
    call.args([
        "call",
        "--queue",
        queue,
        "--procedure",
        procedure,
        "--json",
        json,
    ]);
    run(call)
}

fn fibrpc_call_prints_the_json_reply(queue: &str) {
    let output = call(queue, "text.count", r#""a b c""#);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{COUNTS}\n"));

    // fib's answer is a JSON string: its digits reach any JSON parser exactly.
    let output = call(queue, "fib", "30");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"832040\"\n");
}

fn fibrpc_call_fails_in_one_line(queue: &str) {
    let cases = [
        (
            "kv.get",
            r#""x""#.to_owned(),
            r#"fibrpc: kv.get: unknown-procedure: no procedure named "kv.get" on this server"#,
        ),
        (
            "text.count",
            too_long(),
            "fibrpc: text.count: error: a text of 2000 characters is above this server's bound of 1000",
        ),
        (
            "text.count",
            r#""a b"#.to_owned(),
            "fibrpc: --json is not JSON: EOF while parsing a string at line 1 column 4",
        ),
    ];
    for (procedure, json, expected) in cases {
        let output = call(queue, procedure, &json);
        assert!(!output.status.success(), "{procedure} {json} succeeded");
        assert_eq!(stdout(&output), "", "{procedure}");
        assert_eq!(stderr(&output), format!("{expected}\n"));
    }
}

/// The calls each client makes, and the lines it must print.
fn script() -> (Vec<String>, String) {
    let calls = [
        ("text.count", r#""a b c""#.to_owned()),
        ("fib", "30".to_owned()),
        ("text.count", too_long()),
        ("kv.get", r#""x""#.to_owned()),
    ];
    let args = calls
        .iter()
        .flat_map(|(procedure, json)| [procedure.to_string(), json.clone()])
        .collect();
    let expected = [
        r#"text.count -> {"chars":5,"lines":1,"words":3}"#,
        r#"fib -> "832040""#,
        r#"text.count -> error error {"error":{"TooLong":{"chars":2000,"max":1000}},"kind":"error","message":"a text of 2000 characters is above this server's bound of 1000"}"#,
        r#"kv.get -> error unknown-procedure {"kind":"unknown-procedure","message":"no procedure named \"kv.get\" on this server","name":"kv.get"}"#,
    ];
    (args, expected.map(|line| format!("{line}\n")).concat())
}

fn clients_in_other_languages_call_over_json(queue: &str) {
    let (args, expected) = script();

    let mut python = Command::new(python_with_pika());
    python
        .arg(interop_script("json_client.py"))
        .arg(queue)
        .args(&args);
    let output = run(python);
    assert!(output.status.success(), "python: {}", stderr(&output));
    assert_eq!(stdout(&output), expected, "python");

    let mut node = Command::new("node");
    node.env("NODE_PATH", node_modules_with_amqplib())
        .arg(interop_script("js/json_client.js"))
        .arg(queue)
        .args(&args);
    let output = run(node);
    assert!(output.status.success(), "node: {}", stderr(&output));
    assert_eq!(stdout(&output), expected, "node");
}
